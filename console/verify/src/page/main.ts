// The court's verification page: load the trust policy, the evidence (file
// hashed here in a worker, or a typed hash) and the bundle (file, or fetched
// from the same origin), run the TypeScript verifier, list every check.
import { fromAnyHex, toHex } from '../bytes.ts';
import { FormatError, parseBundle } from '../bundle.ts';
import type { EvidenceAlg } from '../hashes.ts';
import { decodeText, type Evidence, type Result, verify } from '../index.ts';
import { hashFile } from './hashfile.ts';
import { CHECK_LABEL, type Lang, T } from './i18n.ts';
import HashWorker from './worker.ts?worker&inline';

let lang: Lang = (localStorage.getItem('anchord.verify.lang') as Lang) || 'zh';
const $ = <E extends HTMLElement>(id: string) => document.getElementById(id) as E;
const state: { policy?: File; evidence?: File; bundle?: File; bundleBytes?: Uint8Array; last?: Result; hashMs?: number } = {};

/** Progress events, also recorded for the browser tests. */
const progressLog: { done: number; total: number; t: number }[] = [];
(window as unknown as { __anchordProgress: typeof progressLog }).__anchordProgress = progressLog;

function t(k: keyof typeof T): string {
  return T[k][lang];
}

function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  document.querySelectorAll<HTMLElement>('[data-t]').forEach((el) => {
    el.textContent = t(el.dataset.t as keyof typeof T);
  });
  document.querySelectorAll<HTMLInputElement>('[data-ph]').forEach((el) => {
    el.placeholder = t(el.dataset.ph as keyof typeof T);
  });
  if (state.last) render(state.last);
}

function fmtTime(us: bigint): string {
  const d = new Date(Number(us / 1000n));
  const local = d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
  return `${local} (${d.toISOString().replace('.000Z', 'Z')})`;
}

function hashInWorker(file: File, alg: EvidenceAlg, progress: (d: number, n: number) => void): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    let w: Worker;
    const hashPath = (how: string) => ((window as unknown as { __anchordHashPath: string }).__anchordHashPath = how);
    try {
      w = new HashWorker();
    } catch {
      // No worker (a browser that refuses blob workers from file://): same chunks, main thread.
      hashPath('main thread');
      hashFile(file, alg, progress).then(resolve, reject);
      return;
    }
    hashPath('worker');
    w.onmessage = (ev) => {
      const m = ev.data;
      if (m.type === 'progress') progress(m.done, m.total);
      else if (m.type === 'digest') {
        w.terminate();
        resolve(m.digest);
      } else {
        w.terminate();
        reject(new Error(m.message));
      }
    };
    w.onerror = (ev) => {
      w.terminate();
      ev.preventDefault();
      hashPath('main thread (the worker failed)');
      hashFile(file, alg, progress).then(resolve, reject);
    };
    w.postMessage({ file, alg });
  });
}

function setProgress(done: number, total: number) {
  progressLog.push({ done, total, t: performance.now() });
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = false;
  bar.max = Math.max(total, 1);
  bar.value = done;
  const pct = total ? Math.floor((done * 100) / total) : 100;
  $('progress-text').textContent = `${t('hashing')} ${pct}% (${(done / 1048576).toFixed(0)} / ${(total / 1048576).toFixed(0)} MiB)`;
}

async function run() {
  const out = $('result');
  out.hidden = true;
  const bytes = state.bundle ? new Uint8Array(await state.bundle.arrayBuffer()) : state.bundleBytes;
  if (!bytes) {
    $('status').textContent = t('needBundle');
    return;
  }
  $('status').textContent = state.policy ? '' : t('needPolicy');
  const policyText = state.policy ? decodeText(new Uint8Array(await state.policy.arrayBuffer()), state.policy.name) : null;
  let evidence: Evidence | undefined;
  const typed = $<HTMLInputElement>('hash').value.trim();
  if (state.evidence) {
    // The algorithm is the bundle's; an unparseable bundle is INVALID (format) before any hashing.
    let alg: EvidenceAlg | undefined;
    try {
      alg = parseBundle(decodeText(bytes, 'the bundle')).entry.hash_alg;
    } catch (e) {
      if (!(e instanceof FormatError) && !(e instanceof Error)) throw e;
    }
    if (alg) {
      const t0 = performance.now();
      const d = await hashInWorker(state.evidence, alg, setProgress);
      state.hashMs = performance.now() - t0;
      evidence = { kind: 'digest', digest: d };
    }
  } else if (typed) {
    evidence = { kind: 'hex', hex: typed };
  }
  const r = await verify(bytes, policyText, evidence);
  state.last = r;
  render(r);
}

function cell(tr: HTMLTableRowElement, text: string, cls?: string) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function render(r: Result) {
  const out = $('result');
  out.hidden = false;
  const v = $('verdict');
  v.dataset.verdict = r.verdict;
  v.dataset.check = r.check ?? '';
  v.className = `verdict ${r.verdict.toLowerCase()}`;
  $('verdict-line').textContent = r.check ? `${r.verdict} (${r.check}): ${r.message}` : r.verdict;
  $('verdict-text').textContent = t(r.verdict as keyof typeof T);
  const noEv = !state.evidence && !$<HTMLInputElement>('hash').value.trim();
  $('verdict-note').textContent = noEv && r.verdict !== 'ERROR' ? t('noEvidence') : '';
  $('fingerprint').textContent = r.trust_policy_sha256 ? `${t('policy')}: ${r.trust_policy_sha256}` : '';
  // As the preservation certificate words it (verifier/src/certificate.rs).
  const at = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
  $('verified-at').textContent =
    r.verdict === 'VALID' && r.trust_policy_sha256
      ? `核验 Verified ${at} UTC against ${state.policy?.name ?? 'trust.toml'} (sha256 ${r.trust_policy_sha256.slice(0, 16)}) · 未在线核验 not checked online`
      : '';
  const body = $('checks-body');
  body.replaceChildren();
  for (const s of r.steps) {
    const tr = document.createElement('tr');
    tr.dataset.check = s.check;
    tr.dataset.ok = String(s.ok);
    const label = CHECK_LABEL[s.check];
    cell(tr, label ? `${label[lang]} (${s.check})` : s.check);
    const notChecked = s.check === 'timestamp' && !s.ok && r.verdict !== 'INVALID';
    cell(tr, s.ok ? `✔ ${t('passed')}` : notChecked ? `– ${t('notChecked')}` : `✘ ${t('failed')}`, s.ok ? 'ok' : notChecked ? 'warn' : 'bad');
    const td = cell(tr, '');
    for (const [k, val] of Object.entries(s.values)) {
      const div = document.createElement('div');
      const b = document.createElement('span');
      b.className = 'k';
      b.textContent = `${k}: `;
      const c = document.createElement('code');
      c.textContent = val;
      div.append(b, c);
      td.appendChild(div);
    }
    body.appendChild(tr);
  }
  const sum = $('summary');
  sum.replaceChildren();
  const rep = r.report;
  if (rep) {
    const row = (k: keyof typeof T, val: string) => {
      const dt = document.createElement('dt');
      dt.textContent = t(k);
      const dd = document.createElement('dd');
      dd.textContent = val;
      sum.append(dt, dd);
    };
    row('evidence', `${rep.hash_alg} ${rep.evidence_hash}`);
    row('submitter', `${rep.tenant} / ${rep.external_id}`);
    row('recorded', `seq ${rep.seq}, ${fmtTime(rep.received_at_us)}`);
    row('block', `${rep.block_height} / ${rep.checkpoint_size} @ ${rep.checkpoint_origin}`);
    row('witnesses', `${rep.cosigned_by.length} / ${rep.quorum}: ${rep.cosigned_by.join(', ')}`);
    row('timestamp', rep.timestamp_unix !== null ? fmtTime(rep.timestamp_unix * 1_000_000n) : rep.timestamp_unchecked ? t('tsUnchecked') : t('tsNone'));
    row('anchors', rep.anchored ? rep.anchors.join('\n') : t('pending'));
  }
}

function bindFile(id: 'policy' | 'evidence' | 'bundle') {
  const input = $<HTMLInputElement>(`${id}-file`);
  const zone = $(`${id}-zone`);
  const name = $(`${id}-name`);
  const set = (f: File | undefined) => {
    state[id] = f;
    if (id === 'bundle') state.bundleBytes = undefined;
    name.textContent = f ? `${f.name} (${f.size.toLocaleString()} B)` : '';
  };
  input.addEventListener('change', () => set(input.files?.[0]));
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    set(e.dataTransfer?.files[0]);
  });
}

async function fetchBundle() {
  const status = $('fetch-status');
  if (!location.protocol.startsWith('http')) {
    status.textContent = t('fetchOffline');
    return;
  }
  const hash = $<HTMLInputElement>('hash').value.trim();
  let url = $<HTMLInputElement>('bundle-url').value.trim();
  if (!url && hash) url = `/v1/proofs/${hash}`;
  const target = new URL(url, location.href);
  if (target.origin !== location.origin) {
    status.textContent = `${target.origin} ≠ ${location.origin}`;
    return;
  }
  try {
    const res = await fetch(target, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    if (res.status === 202) {
      status.textContent = t('sealing');
      return;
    }
    if (!res.ok) {
      status.textContent = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
      return;
    }
    state.bundle = undefined;
    state.bundleBytes = new Uint8Array(await res.arrayBuffer());
    $('bundle-name').textContent = `${t('fetched')}: ${target.pathname} (${state.bundleBytes.length} B)`;
    status.textContent = '';
  } catch (e) {
    status.textContent = (e as Error).message;
  }
}

function init() {
  bindFile('policy');
  bindFile('evidence');
  bindFile('bundle');
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('anchord.verify.lang', lang);
    applyLang();
  });
  $('hash').addEventListener('input', () => {
    const h = $<HTMLInputElement>('hash').value.trim();
    const u = $<HTMLInputElement>('bundle-url');
    if (fromAnyHex(h) && (!u.value || u.value.startsWith('/v1/proofs/'))) u.value = `/v1/proofs/${h.toLowerCase()}`;
  });
  $('fetch').addEventListener('click', () => void fetchBundle());
  $('verify').addEventListener('click', () => {
    $('verify').setAttribute('disabled', '');
    run()
      .catch((e) => {
        $('status').textContent = (e as Error).message;
      })
      .finally(() => $('verify').removeAttribute('disabled'));
  });
  applyLang();
  void toHex;
}

init();
