import { render } from 'preact';
import { App } from './app';
import './style.css';

// A theme chosen earlier applies before the first paint.
const theme = localStorage.getItem('opendps.console.theme');
if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;

render(<App />, document.getElementById('app')!);
