// The typed API client: generated from docs/workflow-openapi.json (npm run gen),
// so a changed API breaks `tsc --noEmit` (npm run build), not the user.
//
// Sessions: the server keeps the session in an HttpOnly, SameSite=Strict
// cookie that no script can read (workflow/src/console.rs); every request
// carries the X-Anchord-CSRF header that changes authenticated by that cookie need.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export const CSRF_HEADER = 'X-Anchord-CSRF';

export const api = createClient<paths>({
  baseUrl: '',
  credentials: 'same-origin',
  headers: { [CSRF_HEADER]: '1' },
});

/** Called when the server says the session is gone (401). */
let onUnauthenticated: () => void = () => {};
export function setOnUnauthenticated(f: () => void) {
  onUnauthenticated = f;
}

/** Called when the server says the password must be changed first (403
 * `password_change_required`, after an administrator's reset). */
let onPasswordChangeRequired: () => void = () => {};
export function setOnPasswordChangeRequired(f: () => void) {
  onPasswordChangeRequired = f;
}

/** Whether an answer is 403 `password_change_required` (reads a copy of the body). */
export async function isPasswordChangeRequired(response: Response): Promise<boolean> {
  if (response.status !== 403) return false;
  try {
    const b = (await response.clone().json()) as Partial<ApiErrorBody>;
    return b.error?.code === 'password_change_required';
  } catch {
    return false;
  }
}

const unauthenticated: Middleware = {
  async onResponse({ request, response }) {
    if (response.status === 401 && !request.url.endsWith('/v1/auth/login')) {
      onUnauthenticated();
    } else if (await isPasswordChangeRequired(response)) {
      onPasswordChangeRequired();
    }
    return undefined;
  },
};
api.use(unauthenticated);

/** The server's error body, or a generic one. */
export interface ApiErrorBody {
  error: { code: string; message: string; fields?: Record<string, string> };
}

/** A readable message from an error answer. */
export function errorText(e: unknown): string {
  const b = e as Partial<ApiErrorBody> | undefined;
  if (b && b.error) {
    const f = b.error.fields ? Object.entries(b.error.fields).map(([k, v]) => `${k}: ${v}`) : [];
    return [b.error.message, ...f].join('; ');
  }
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Thrown by `must` for an error answer. */
export class ApiFailure extends Error {
  constructor(
    public status: number,
    public body: unknown,
  ) {
    super(errorText(body));
  }
}

/** The data of an openapi-fetch answer, or throw its error. */
export async function must<T>(
  p: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const r = await p;
  if (r.error !== undefined || !r.response.ok) {
    throw new ApiFailure(r.response.status, r.error);
  }
  return r.data as T;
}

/** The next-page cursor of a paged list (Anchord-Next-After). */
export function nextAfter(response: Response): number | undefined {
  const v = response.headers.get('Anchord-Next-After');
  return v ? Number(v) : undefined;
}

/**
 * Upload a file as multipart with progress (fetch has no upload progress):
 * same origin, the session cookie and the CSRF header.
 */
export function uploadWithProgress(
  method: 'PUT' | 'POST',
  url: string,
  file: File,
  onProgress: (percent: number) => void,
  extra?: Record<string, string>,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.withCredentials = true;
    xhr.setRequestHeader(CSRF_HEADER, '1');
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onProgress(Math.round((ev.loaded / ev.total) * 100));
    };
    xhr.onload = () => {
      let body: unknown;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        body = { error: { code: 'bad_answer', message: xhr.responseText.slice(0, 200) } };
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(100);
        resolve(body);
      } else {
        if (xhr.status === 401) onUnauthenticated();
        reject(new ApiFailure(xhr.status, body));
      }
    };
    xhr.onerror = () => reject(new Error('network error'));
    const form = new FormData();
    for (const [k, v] of Object.entries(extra ?? {})) form.append(k, v);
    form.append('file', file, file.name);
    xhr.send(form);
  });
}
