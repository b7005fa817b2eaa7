import { useCallback, useState } from 'preact/hooks';

/**
 * A page's changes made through the API: the error of the last one (shown by ErrorBanner, never
 * thrown) and whether a form's change is under way. `run` clears the previous error first; it is
 * the same function on every render, so reads built on it can be effect dependencies.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = useCallback(async (work: () => Promise<void>, showBusy = false) => {
    setError(undefined);
    if (showBusy) setBusy(true);
    try {
      await work();
    } catch (caught) {
      setError(caught);
    } finally {
      if (showBusy) setBusy(false);
    }
  }, []);
  /** A form's submit handler: runs `work` with the form busy meanwhile. */
  const submit = (work: () => Promise<void>) => (event: Event) => {
    event.preventDefault();
    void run(work, true);
  };
  return { busy, error, setError, run, submit };
}
