import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
// Ant Design in zero-runtime mode: its styles are this static file (a hashed
// asset), so the Content-Security-Policy needs no 'unsafe-inline' for styles.
import 'antd/dist/antd.css';
import './app.css';
import { App } from './App';
import { stampStyleNonce } from './csp';

stampStyleNonce();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
