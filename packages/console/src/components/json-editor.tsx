import { useId } from 'preact/hooks';

/**
 * A JSON text area that shows the first problem `check` finds as the user types (as an error tied
 * to the field with aria-describedby and aria-invalid); the caller refuses to save while there is one.
 */
export function JsonEditor(props: { label: string; value: string; onInput: (value: string) => void; problem?: string; hint?: string; rows?: number }) {
  const id = useId();
  const described = [props.hint ? `${id}-hint` : '', props.problem ? `${id}-problem` : ''].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <textarea
        id={id}
        class="code"
        rows={props.rows ?? 8}
        spellcheck={false}
        value={props.value}
        aria-invalid={props.problem ? true : undefined}
        aria-describedby={described || undefined}
        onInput={(event) => props.onInput((event.target as HTMLTextAreaElement).value)}
      />
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
      {props.problem ? (
        <p class="field-error" id={`${id}-problem`}>
          {props.problem}
        </p>
      ) : null}
    </div>
  );
}
