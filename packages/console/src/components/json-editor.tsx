import { TextAreaField } from './fields';

/**
 * A JSON text area that shows the first problem `check` finds as the user types (as an error tied
 * to the field with aria-describedby and aria-invalid); the caller refuses to save while there is one.
 */
export function JsonEditor(props: { label: string; value: string; onInput: (value: string) => void; problem?: string; hint?: string; rows?: number }) {
  return <TextAreaField {...props} rows={props.rows ?? 8} />;
}
