import { useState } from 'preact/hooks';
import { ErrorBanner } from '../components/error-banner';
import { useAction } from '../components/use-action';
import { parseConnectionString, type Credentials } from '../credentials';

/**
 * Sign-in with a connection string: an instance's service policy (`provisioningserviceowner`, in
 * `.opendps/connection.json` as `serviceConnectionString`) or the admin key (`adminConnectionString`).
 */
export function SignIn({ onSignIn }: { onSignIn: (credentials: Credentials, remember: boolean) => Promise<void> }) {
  const [text, setText] = useState('');
  const [keep, setKeep] = useState(false);
  const { busy, error, submit } = useAction();

  return (
    <main class="sign-in">
      <h1>OpenDPS console</h1>
      <form onSubmit={submit(() => onSignIn(parseConnectionString(text), keep))} class="card">
        <label for="connection-string">Connection string</label>
        <textarea
          id="connection-string"
          rows={4}
          spellcheck={false}
          autocomplete="off"
          placeholder="HostName=…;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=…"
          value={text}
          onInput={(event) => setText((event.target as HTMLTextAreaElement).value)}
          required
        />
        <p class="hint">
          An instance's service connection string, or the admin connection string to manage every instance. Both are in
          <code>.opendps/connection.json</code>.
        </p>
        <label class="check">
          <input type="checkbox" checked={keep} onChange={(event) => setKeep((event.target as HTMLInputElement).checked)} />
          Remember me on this browser (stores the key in localStorage)
        </label>
        <ErrorBanner error={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
