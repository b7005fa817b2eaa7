import { errorText } from '../api';

/** An error in words, with DPS's error code when the server sent one. */
export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (error === undefined || error === null) return null;
  return (
    <div class="banner error" role="alert">
      <span>{errorText(error)}</span>
      {onDismiss ? (
        <button type="button" class="link" onClick={onDismiss} aria-label="Dismiss the error">
          ×
        </button>
      ) : null}
    </div>
  );
}
