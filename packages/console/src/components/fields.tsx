import type { ComponentChildren } from 'preact';
import { useId } from 'preact/hooks';

/** What a field's control takes from its wrapper: its id, and the ids of its hint and problem. */
export interface ControlProps {
  id: string;
  'aria-describedby': string | undefined;
  'aria-invalid': true | undefined;
}

/**
 * The one labelled-field wrapper: a label for the control `children` renders, and the `hint` and
 * `problem` (shown as an error) tied to it with aria-describedby (and aria-invalid while there is a problem).
 */
export function Field(props: { label: string; hint?: string; problem?: string; children: (control: ControlProps) => ComponentChildren }) {
  const id = useId();
  const described = [props.hint ? `${id}-hint` : '', props.problem ? `${id}-problem` : ''].filter(Boolean).join(' ');
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.children({ id, 'aria-describedby': described || undefined, 'aria-invalid': props.problem ? true : undefined })}
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

/** A labelled text input. */
export function TextField(props: {
  label: string;
  value: string;
  onInput: (value: string) => void;
  hint?: string;
  required?: boolean;
  disabled?: boolean;
  pattern?: string;
  placeholder?: string;
  type?: 'text' | 'number' | 'search';
  name?: string;
}) {
  return (
    <Field label={props.label} hint={props.hint}>
      {(control) => (
        <input
          {...control}
          name={props.name}
          type={(props.type ?? 'text') as 'text'}
          value={props.value}
          required={props.required}
          disabled={props.disabled}
          pattern={props.pattern}
          placeholder={props.placeholder}
          onInput={(event) => props.onInput((event.target as HTMLInputElement).value)}
        />
      )}
    </Field>
  );
}

export function SelectField<T extends string>(props: { label: string; value: T; options: readonly { value: T; label: string }[]; onChange: (value: T) => void; hint?: string }) {
  return (
    <Field label={props.label} hint={props.hint}>
      {(control) => (
        <select {...control} value={props.value} onChange={(event) => props.onChange((event.target as HTMLSelectElement).value as T)}>
          {props.options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}

export function CheckField(props: { label: string; checked: boolean; onChange: (checked: boolean) => void; disabled?: boolean }) {
  return (
    <label class="check">
      <input type="checkbox" checked={props.checked} disabled={props.disabled} onChange={(event) => props.onChange((event.target as HTMLInputElement).checked)} />
      {props.label}
    </label>
  );
}

/** A group of related fields with a legend (radio groups, hub lists). */
export function FieldSet({ legend, children }: { legend: string; children: ComponentChildren }) {
  return (
    <fieldset class="fieldset">
      <legend>{legend}</legend>
      {children}
    </fieldset>
  );
}

/** A labelled plain text area (base64 keys, JSON and other long values); `problem` is shown as its error. */
export function TextAreaField(props: { label: string; value: string; onInput: (value: string) => void; rows?: number; hint?: string; problem?: string }) {
  return (
    <Field label={props.label} hint={props.hint} problem={props.problem}>
      {(control) => (
        <textarea
          {...control}
          class="code"
          rows={props.rows ?? 3}
          spellcheck={false}
          value={props.value}
          onInput={(event) => props.onInput((event.target as HTMLTextAreaElement).value)}
        />
      )}
    </Field>
  );
}
