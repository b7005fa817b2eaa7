import { useEffect, useRef } from 'preact/hooks';

/**
 * A form that opens on request takes the focus on its first field that can be typed in, so a
 * keyboard user lands in it rather than on the button that opened it (docs/console.md "Keyboard").
 */
export function useFocusFirstField<T extends HTMLElement>(open = true) {
  const ref = useRef<T>(null);
  useEffect(() => {
    if (!open) return;
    ref.current?.querySelector<HTMLElement>('input:enabled:not([readonly]):not([type="hidden"]), textarea:enabled:not([readonly]), select:enabled')?.focus();
  }, [open]);
  return ref;
}
