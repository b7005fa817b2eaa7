import { useState } from 'preact/hooks';

/** Copies `text` to the clipboard and says so (or why not) in a live region. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      setState('failed');
    }
  };
  return (
    <span class="copy">
      <button type="button" class="secondary" onClick={() => void copy()} aria-label={label}>
        Copy
      </button>
      <span role="status" class="hint">
        {state === 'copied' ? 'Copied.' : state === 'failed' ? 'The browser did not allow copying; select the text instead.' : ''}
      </span>
    </span>
  );
}
