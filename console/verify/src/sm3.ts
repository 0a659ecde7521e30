// SM3 (GB/T 32905-2016) as an incremental hash on @noble/hashes' audited
// Merkle–Damgård core (`HashMD`: buffering, padding with a 64-bit
// big-endian bit length, as SHA-256). Only the compression function is
// here; it is checked against the standard's vectors and sm-crypto in the
// unit tests.
import { HashMD } from '@noble/hashes/_md.js';
import { createHasher } from '@noble/hashes/utils.js';

const IV = [0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e];
const W = new Uint32Array(68);
const W1 = new Uint32Array(64);
const rotl = (x: number, n: number) => ((x << (n & 31)) | (x >>> ((32 - (n & 31)) & 31))) >>> 0;
const P0 = (x: number) => (x ^ rotl(x, 9) ^ rotl(x, 17)) >>> 0;
const P1 = (x: number) => (x ^ rotl(x, 15) ^ rotl(x, 23)) >>> 0;

export class SM3 extends HashMD<SM3> {
  private A = IV[0] | 0;
  private B = IV[1] | 0;
  private C = IV[2] | 0;
  private D = IV[3] | 0;
  private E = IV[4] | 0;
  private F = IV[5] | 0;
  private G = IV[6] | 0;
  private H = IV[7] | 0;
  constructor() {
    super(64, 32, 8, false);
  }
  protected get(): number[] {
    const { A, B, C, D, E, F, G, H } = this;
    return [A, B, C, D, E, F, G, H];
  }
  protected set(A: number, B: number, C: number, D: number, E: number, F: number, G: number, H: number): void {
    this.A = A | 0;
    this.B = B | 0;
    this.C = C | 0;
    this.D = D | 0;
    this.E = E | 0;
    this.F = F | 0;
    this.G = G | 0;
    this.H = H | 0;
  }
  _cloneInto(to?: SM3): SM3 {
    to ||= new SM3();
    to.set(...(this.get() as [number, number, number, number, number, number, number, number]));
    // HashMD copies the buffer, length and position
    return (this as any)._cloneIntoMeta ? (this as any)._cloneIntoMeta(to) : to;
  }
  protected process(view: DataView, offset: number): void {
    for (let i = 0; i < 16; i++, offset += 4) W[i] = view.getUint32(offset, false);
    for (let j = 16; j < 68; j++) {
      W[j] = (P1(W[j - 16] ^ W[j - 9] ^ rotl(W[j - 3], 15)) ^ rotl(W[j - 13], 7) ^ W[j - 6]) >>> 0;
    }
    for (let j = 0; j < 64; j++) W1[j] = (W[j] ^ W[j + 4]) >>> 0;
    let A = this.A >>> 0, B = this.B >>> 0, C = this.C >>> 0, D = this.D >>> 0;
    let E = this.E >>> 0, F = this.F >>> 0, G = this.G >>> 0, H = this.H >>> 0;
    for (let j = 0; j < 64; j++) {
      const T = j < 16 ? 0x79cc4519 : 0x7a879d8a;
      const a12 = rotl(A, 12);
      const SS1 = rotl((a12 + E + rotl(T, j)) >>> 0, 7);
      const SS2 = (SS1 ^ a12) >>> 0;
      const FF = j < 16 ? (A ^ B ^ C) >>> 0 : ((A & B) | (A & C) | (B & C)) >>> 0;
      const GG = j < 16 ? (E ^ F ^ G) >>> 0 : ((E & F) | (~E & G)) >>> 0;
      const TT1 = (FF + D + SS2 + W1[j]) >>> 0;
      const TT2 = (GG + H + SS1 + W[j]) >>> 0;
      D = C;
      C = rotl(B, 9);
      B = A;
      A = TT1;
      H = G;
      G = rotl(F, 19);
      F = E;
      E = P0(TT2);
    }
    this.set(A ^ this.A, B ^ this.B, C ^ this.C, D ^ this.D, E ^ this.E, F ^ this.F, G ^ this.G, H ^ this.H);
  }
  protected roundClean(): void {
    W.fill(0);
    W1.fill(0);
  }
  destroy(): void {
    this.set(0, 0, 0, 0, 0, 0, 0, 0);
    this.buffer.fill(0);
  }
}

export const sm3 = createHasher(() => new SM3());
