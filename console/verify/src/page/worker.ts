// The hashing worker: receives {file, alg}, posts {progress} and {digest}.
import type { EvidenceAlg } from '../hashes.ts';
import { hashFile } from './hashfile.ts';

self.onmessage = async (ev: MessageEvent<{ file: Blob; alg: EvidenceAlg }>) => {
  try {
    const d = await hashFile(ev.data.file, ev.data.alg, (done, total) => self.postMessage({ type: 'progress', done, total }));
    self.postMessage({ type: 'digest', digest: d });
  } catch (e) {
    self.postMessage({ type: 'error', message: (e as Error).message });
  }
};
