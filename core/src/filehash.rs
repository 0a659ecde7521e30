//! Incremental hashing of evidence files (for streamed uploads and files
//! too large to read at once): the same digests as [`EvidenceAlg::hash`].

use sha2::Digest as _;

use crate::entry::EvidenceAlg;

/// A running digest of one evidence algorithm.
#[derive(Clone, Debug)]
pub enum FileHasher {
    Sha256(sha2::Sha256),
    Sm3(sm3::Sm3),
    Sha512(sha2::Sha512),
}

impl FileHasher {
    pub fn new(alg: EvidenceAlg) -> Self {
        match alg {
            EvidenceAlg::Sha256 => FileHasher::Sha256(sha2::Sha256::new()),
            EvidenceAlg::Sm3 => FileHasher::Sm3(sm3::Sm3::new()),
            EvidenceAlg::Sha512 => FileHasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            FileHasher::Sha256(h) => h.update(data),
            FileHasher::Sm3(h) => h.update(data),
            FileHasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self {
            FileHasher::Sha256(h) => h.finalize().to_vec(),
            FileHasher::Sm3(h) => h.finalize().to_vec(),
            FileHasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_digests_equal_whole_file_digests() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for alg in EvidenceAlg::ALL {
            let mut h = FileHasher::new(alg);
            for c in data.chunks(333) {
                h.update(c);
            }
            assert_eq!(h.finalize(), alg.hash(&data), "{alg}");
        }
    }
}
