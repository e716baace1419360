//! Filter sizing and the bounds accepted from the wire.

use super::{BloomError, ErrorRateValue};

/// Sizing of a filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BloomParams {
    /// Number of items the filter is sized for.
    pub capacity: u64,
    /// Target false-positive rate.
    pub error_rate: f64,
    /// Number of hash functions.
    pub k: u32,
    /// Number of bits.
    pub m_bits: u64,
}

impl BloomParams {
    /// The parameters both peers derive from a capacity and an error rate:
    /// `bits_per_elem = ceil(-ln p / ln² 2)`, `k = round(ln 2 · bits_per_elem)`
    /// (half away from zero, as Nim's `round`), `m = capacity · bits_per_elem`.
    ///
    /// Errors: capacity 0, `p` not in `(0, 1)` (or NaN), and `m` or the word
    /// array not fitting in memory.
    pub fn new(capacity: u64, error_rate: f64) -> Result<Self, BloomError> {
        if capacity == 0 {
            return Err(BloomError::ZeroCapacity);
        }
        if !(error_rate > 0.0 && error_rate < 1.0) {
            return Err(BloomError::InvalidErrorRate {
                error_rate: ErrorRateValue(error_rate),
            });
        }
        let ln2 = std::f64::consts::LN_2;
        // -ln p > 0 and finite for p in (0, 1), even for subnormal p (< 745).
        let bits_per_elem = (-error_rate.ln() / (ln2 * ln2)).ceil();
        let k = (ln2 * bits_per_elem).round();
        let bits_per_elem = bits_per_elem as u64;
        let too_large = || BloomError::TooLarge {
            capacity,
            error_rate: ErrorRateValue(error_rate),
            bits_per_elem,
        };
        let m_bits = capacity.checked_mul(bits_per_elem).ok_or_else(too_large)?;
        // The word array (8 · (1 + m / 64) bytes) must be addressable.
        let words = usize::try_from(m_bits / 64 + 1).map_err(|_| too_large())?;
        if words.checked_mul(8).is_none_or(|b| b > isize::MAX as usize) {
            return Err(too_large());
        }
        Ok(BloomParams {
            capacity,
            error_rate,
            k: k as u32,
            m_bits,
        })
    }

    /// Number of 64-bit words both peers allocate: `1 + m / 64`.
    pub fn words(&self) -> usize {
        1 + (self.m_bits / 64) as usize
    }

    /// Checks parameters received from the wire (or configured) against `limits`:
    /// `0 < m ≤ max_m_bits`, `0 < k ≤ max_k`, `1 ≤ capacity ≤ m`, `0 < p < 1`.
    pub fn validate(&self, limits: &BloomLimits) -> Result<(), BloomError> {
        if self.m_bits == 0 {
            return Err(BloomError::ZeroBits);
        }
        if self.m_bits > limits.max_m_bits {
            return Err(BloomError::TooManyBits {
                m_bits: self.m_bits,
                max: limits.max_m_bits,
            });
        }
        if self.k == 0 {
            return Err(BloomError::ZeroHashes);
        }
        if self.k > limits.max_k {
            return Err(BloomError::TooManyHashes {
                k: u64::from(self.k),
                max: limits.max_k,
            });
        }
        if self.capacity == 0 || self.capacity > self.m_bits {
            return Err(BloomError::InvalidCapacity {
                capacity: self.capacity,
                m_bits: self.m_bits,
            });
        }
        if !(self.error_rate > 0.0 && self.error_rate < 1.0) {
            return Err(BloomError::InvalidErrorRate {
                error_rate: ErrorRateValue(self.error_rate),
            });
        }
        Ok(())
    }
}

impl Default for BloomParams {
    /// Capacity 10 000, error rate 0.001: k = 10, m = 150 000 bits (2 344 words, 18 752 bytes).
    fn default() -> Self {
        BloomParams {
            capacity: 10_000,
            error_rate: 0.001,
            k: 10,
            m_bits: 150_000,
        }
    }
}

/// Bounds on filter parameters accepted from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BloomLimits {
    /// Largest `k` accepted.
    pub max_k: u32,
    /// Largest `m` accepted, in bits.
    pub max_m_bits: u64,
}

impl Default for BloomLimits {
    /// `k ≤ 64`, `m ≤ 8 Mi bits` (1 MiB of bits; nim-sds sends 180 000 after a rollover).
    fn default() -> Self {
        BloomLimits {
            max_k: 64,
            max_m_bits: 8 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_formula() {
        assert_eq!(
            BloomParams::new(10_000, 0.001).unwrap(),
            BloomParams::default()
        );
        let p = BloomParams::new(100, 0.01).unwrap();
        assert_eq!((p.k, p.m_bits, p.words()), (7, 1000, 16));
        let p = BloomParams::new(12_000, 0.001).unwrap();
        assert_eq!((p.k, p.m_bits, p.words()), (10, 180_000, 2813));
    }

    #[test]
    fn errors() {
        assert_eq!(BloomParams::new(0, 0.1), Err(BloomError::ZeroCapacity));
        for p in [0.0, 1.0, -0.5, 2.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                BloomParams::new(10, p),
                Err(BloomError::InvalidErrorRate { .. })
            ));
        }
        assert!(matches!(
            BloomParams::new(u64::MAX, 0.001),
            Err(BloomError::TooLarge { .. })
        ));
        assert!(matches!(
            BloomParams::new(u64::MAX / 8, 0.001),
            Err(BloomError::TooLarge { .. })
        ));
        // The smallest positive rate still gives finite parameters.
        let p = BloomParams::new(1, f64::from_bits(1)).unwrap();
        assert!(p.k > 0 && p.m_bits > 0);
    }
}
