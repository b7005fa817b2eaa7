import { useEffect, useState } from 'preact/hooks';

type Theme = 'system' | 'light' | 'dark';
const KEY = 'opendps.console.theme';
const NEXT: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' };

/** Light, dark, or the system's choice (the default); a display preference, so it is remembered. */
export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(KEY) as Theme | null) ?? 'system');
  useEffect(() => {
    if (theme === 'system') {
      delete document.documentElement.dataset.theme;
      localStorage.removeItem(KEY);
    } else {
      document.documentElement.dataset.theme = theme;
      localStorage.setItem(KEY, theme);
    }
  }, [theme]);
  return (
    <button type="button" class="link" onClick={() => setTheme(NEXT[theme])} aria-label={`Theme: ${theme}. Change the theme`}>
      {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} {theme}
    </button>
  );
}
