// Hash a File in chunks (File.slice + an incremental hash): never the whole
// file in memory, never uploaded. Shared by the worker and the main-thread
// fallback.
import { type EvidenceAlg, incremental } from '../hashes.ts';

export const CHUNK = 4 << 20;

export async function hashFile(file: Blob, alg: EvidenceAlg, progress: (done: number, total: number) => void): Promise<Uint8Array> {
  const h = incremental(alg);
  const total = file.size;
  for (let off = 0; off < total; off += CHUNK) {
    const buf = new Uint8Array(await file.slice(off, Math.min(off + CHUNK, total)).arrayBuffer());
    h.update(buf);
    progress(Math.min(off + CHUNK, total), total);
  }
  if (total === 0) progress(0, 0);
  return h.digest();
}
