import type { ComponentChildren } from 'preact';
import { useId } from 'preact/hooks';

/** A labelled text input; `hint` is tied to it with aria-describedby. */
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
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={(props.type ?? 'text') as 'text'}
        value={props.value}
        required={props.required}
        disabled={props.disabled}
        pattern={props.pattern}
        placeholder={props.placeholder}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        onInput={(event) => props.onInput((event.target as HTMLInputElement).value)}
      />
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
    </div>
  );
}

export function SelectField<T extends string>(props: { label: string; value: T; options: readonly { value: T; label: string }[]; onChange: (value: T) => void; hint?: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <select id={id} value={props.value} aria-describedby={props.hint ? `${id}-hint` : undefined} onChange={(event) => props.onChange((event.target as HTMLSelectElement).value as T)}>
        {props.options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
    </div>
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

/** A labelled plain text area (base64 keys and other long values). */
export function TextAreaField(props: { label: string; value: string; onInput: (value: string) => void; rows?: number; hint?: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <textarea
        id={id}
        class="code"
        rows={props.rows ?? 3}
        spellcheck={false}
        value={props.value}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        onInput={(event) => props.onInput((event.target as HTMLTextAreaElement).value)}
      />
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
    </div>
  );
}
