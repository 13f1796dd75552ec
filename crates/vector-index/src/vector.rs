//! Vector validation, normalisation and the dot-product kernels.
//!
//! Every vector that enters the index is checked and L2-normalised here, so
//! cosine similarity is a plain dot product everywhere else.

use crate::error::{IndexError, Result};

/// Checks `v` against `dim` and returns its L2-normalised copy.
///
/// The norm is accumulated in `f64` so tiny or huge (but finite) components
/// neither underflow to a zero norm nor overflow to infinity.
pub fn normalized(v: &[f32], dim: usize) -> Result<Vec<f32>> {
    if v.len() != dim {
        return Err(IndexError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    let mut sum = 0f64;
    for (index, x) in v.iter().enumerate() {
        if !x.is_finite() {
            return Err(IndexError::NonFinite { index });
        }
        sum += f64::from(*x) * f64::from(*x);
    }
    if sum == 0.0 {
        return Err(IndexError::ZeroVector);
    }
    let inv = 1.0 / sum.sqrt();
    Ok(v.iter().map(|x| (f64::from(*x) * inv) as f32).collect())
}

/// Dot product of two equally long slices, using AVX2+FMA when the CPU has it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `dot_avx2` is compiled for.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Portable dot product; eight independent sums let the compiler vectorise it.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_widening(a, b, |x| x)
}

/// `a · b` with each element of `b` widened to `f32`, in eight independent sums.
#[inline]
fn dot_widening<T: Copy>(a: &[f32], b: &[T], widen: impl Fn(T) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [0f32; 8];
    let chunks = n / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * widen(cb[i]);
        }
    }
    let tail: f32 = a[chunks..n]
        .iter()
        .zip(&b[chunks..n])
        .map(|(x, y)| x * widen(*y))
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// The sum of the eight lanes of `s`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sum_lanes(s: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let hi = _mm256_extractf128_ps(s, 1);
    let lo = _mm256_castps256_ps128(s);
    let q = _mm_add_ps(hi, lo);
    let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
    _mm_cvtss_f32(q)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let chunks = n / 16 * 16;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut s0 = _mm256_setzero_ps();
    let mut s1 = _mm256_setzero_ps();
    let mut i = 0;
    while i < chunks {
        // SAFETY: i + 16 <= chunks <= n, the length of both slices.
        unsafe {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
        }
        i += 16;
    }
    let mut total = sum_lanes(_mm256_add_ps(s0, s1));
    for j in chunks..n {
        total += a[j] * b[j];
    }
    total
}

/// Dot product of an `f32` query with 8-bit codes, using AVX2+FMA when the CPU has it.
#[inline]
pub fn dot_i8(a: &[f32], codes: &[i8]) -> f32 {
    debug_assert_eq!(a.len(), codes.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features `dot_i8_avx2` is compiled for.
            return unsafe { dot_i8_avx2(a, codes) };
        }
    }
    dot_i8_portable(a, codes)
}

/// Portable [`dot_i8`].
fn dot_i8_portable(a: &[f32], codes: &[i8]) -> f32 {
    dot_widening(a, codes, f32::from)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_i8_avx2(a: &[f32], codes: &[i8]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(codes.len());
    let chunks = n / 16 * 16;
    let (pa, pc) = (a.as_ptr(), codes.as_ptr());
    let mut s0 = _mm256_setzero_ps();
    let mut s1 = _mm256_setzero_ps();
    let mut i = 0;
    while i < chunks {
        // SAFETY: i + 16 <= chunks <= n, the length of both slices; the
        // 8-byte loads read codes i..i + 8 and i + 8..i + 16.
        unsafe {
            let c0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                pc.add(i) as *const __m128i
            )));
            let c1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                pc.add(i + 8) as *const __m128i
            )));
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), c0, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), c1, s1);
        }
        i += 16;
    }
    let mut total = sum_lanes(_mm256_add_ps(s0, s1));
    for j in chunks..n {
        total += a[j] * f32::from(codes[j]);
    }
    total
}

/// Dot product of an `f32` query with half-precision values, using
/// AVX-512 or AVX2+FMA+F16C when the CPU has them.
#[inline]
pub fn dot_f16(a: &[f32], halves: &[half::f16]) -> f32 {
    debug_assert_eq!(a.len(), halves.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features `dot_f16_avx512` is compiled for.
            return unsafe { dot_f16_avx512(a, halves) };
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU supports the features `dot_f16_avx2` is compiled for.
            return unsafe { dot_f16_avx2(a, halves) };
        }
    }
    dot_f16_portable(a, halves)
}

/// Portable [`dot_f16`].
fn dot_f16_portable(a: &[f32], halves: &[half::f16]) -> f32 {
    dot_widening(a, halves, half::f16::to_f32)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(a: &[f32], halves: &[half::f16]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(halves.len());
    let chunks = n / 16 * 16;
    let (pa, ph) = (a.as_ptr(), halves.as_ptr());
    let mut s0 = _mm256_setzero_ps();
    let mut s1 = _mm256_setzero_ps();
    let mut i = 0;
    while i < chunks {
        // SAFETY: i + 16 <= chunks <= n, the length of both slices; each
        // 16-byte load reads eight halves.
        unsafe {
            let h0 = _mm256_cvtph_ps(_mm_loadu_si128(ph.add(i) as *const __m128i));
            let h1 = _mm256_cvtph_ps(_mm_loadu_si128(ph.add(i + 8) as *const __m128i));
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), h0, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), h1, s1);
        }
        i += 16;
    }
    let mut total = sum_lanes(_mm256_add_ps(s0, s1));
    for j in chunks..n {
        total += a[j] * halves[j].to_f32();
    }
    total
}

/// [`dot_f16`] on AVX-512: four running sums of sixteen lanes, so the
/// additions of one do not wait on the others' (a single sum waits on each
/// fused multiply-add in turn, and a 384-wide vector makes 24 of them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_f16_avx512(a: &[f32], halves: &[half::f16]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(halves.len());
    let (pa, ph) = (a.as_ptr(), halves.as_ptr());
    let mut sums = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (both loops): i + 16 * lanes <= n, the length of both slices;
    // each 32-byte load reads sixteen halves.
    while i + 64 <= n {
        for (j, sum) in sums.iter_mut().enumerate() {
            let at = i + 16 * j;
            unsafe {
                let h = _mm512_cvtph_ps(_mm256_loadu_si256(ph.add(at) as *const __m256i));
                *sum = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(at)), h, *sum);
            }
        }
        i += 64;
    }
    while i + 16 <= n {
        unsafe {
            let h = _mm512_cvtph_ps(_mm256_loadu_si256(ph.add(i) as *const __m256i));
            sums[0] = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), h, sums[0]);
        }
        i += 16;
    }
    let paired = [
        _mm512_add_ps(sums[0], sums[1]),
        _mm512_add_ps(sums[2], sums[3]),
    ];
    let mut total = _mm512_reduce_add_ps(_mm512_add_ps(paired[0], paired[1]));
    for j in i..n {
        total += a[j] * halves[j].to_f32();
    }
    total
}

/// Integer dot product of a 16-bit query with 8-bit codes, using AVX-512BW
/// or AVX2 when the CPU has them. Exact and the same on every path: the
/// caller bounds the query (`|q| · 127 · len` must fit an `i32`).
#[inline]
pub fn dot_i16_i8(query: &[i16], codes: &[i8]) -> i32 {
    debug_assert_eq!(query.len(), codes.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports the features `dot_i16_i8_avx512` is compiled for.
            return unsafe { dot_i16_i8_avx512(query, codes) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the features `dot_i16_i8_avx2` is compiled for.
            return unsafe { dot_i16_i8_avx2(query, codes) };
        }
    }
    dot_i16_i8_portable(query, codes)
}

/// Portable [`dot_i16_i8`].
fn dot_i16_i8_portable(query: &[i16], codes: &[i8]) -> i32 {
    query
        .iter()
        .zip(codes)
        .map(|(q, c)| i32::from(*q) * i32::from(*c))
        .sum()
}

/// [`dot_i16_i8`] on AVX2: sixteen codes widened to 16 bits, multiplied in
/// pairs into eight 32-bit sums (`vpmaddwd`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i16_i8_avx2(query: &[i16], codes: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = query.len().min(codes.len());
    let (pq, pc) = (query.as_ptr(), codes.as_ptr());
    let mut sum = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, the length of both slices; the 16-byte load
        // reads codes i..i + 16, the 32-byte one query i..i + 16.
        unsafe {
            let c = _mm256_cvtepi8_epi16(_mm_loadu_si128(pc.add(i) as *const __m128i));
            let q = _mm256_loadu_si256(pq.add(i) as *const __m256i);
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(c, q));
        }
        i += 16;
    }
    let mut lanes = [0i32; 8];
    // SAFETY: `lanes` is 32 bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, sum) };
    lanes.iter().sum::<i32>() + dot_i16_i8_portable(&query[i..n], &codes[i..n])
}

/// [`dot_i16_i8`] on AVX-512BW: thirty-two codes a step, two running sums.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
unsafe fn dot_i16_i8_avx512(query: &[i16], codes: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let n = query.len().min(codes.len());
    let (pq, pc) = (query.as_ptr(), codes.as_ptr());
    let mut sums = [_mm512_setzero_si512(); 2];
    let mut i = 0;
    // SAFETY (both loops): i + 32 * steps <= n, the length of both slices;
    // each 32-byte load reads 32 codes, each 64-byte load 32 query values.
    while i + 64 <= n {
        for (j, sum) in sums.iter_mut().enumerate() {
            let at = i + 32 * j;
            unsafe {
                let c = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pc.add(at) as *const __m256i));
                let q = _mm512_loadu_si512(pq.add(at) as *const __m512i);
                *sum = _mm512_add_epi32(*sum, _mm512_madd_epi16(c, q));
            }
        }
        i += 64;
    }
    while i + 32 <= n {
        unsafe {
            let c = _mm512_cvtepi8_epi16(_mm256_loadu_si256(pc.add(i) as *const __m256i));
            let q = _mm512_loadu_si512(pq.add(i) as *const __m512i);
            sums[0] = _mm512_add_epi32(sums[0], _mm512_madd_epi16(c, q));
        }
        i += 32;
    }
    _mm512_reduce_add_epi32(_mm512_add_epi32(sums[0], sums[1]))
        + dot_i16_i8_portable(&query[i..n], &codes[i..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    #[test]
    fn kernels_agree_with_f64_reference_at_odd_lengths() {
        for n in [0usize, 1, 7, 8, 15, 16, 17, 33, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 5.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0).collect();
            let want = reference(&a, &b);
            assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-3, "n={n}");
            assert!(
                (f64::from(dot_portable(&a, &b)) - want).abs() < 1e-3,
                "n={n}"
            );
            let codes: Vec<i8> = (0..n).map(|i| (i * 37 % 255) as u8 as i8).collect();
            let wide: Vec<f32> = codes.iter().map(|c| f32::from(*c)).collect();
            let want = reference(&a, &wide);
            for got in [dot_i8(&a, &codes), dot_i8_portable(&a, &codes)] {
                assert!(
                    (f64::from(got) - want).abs() < 1e-2,
                    "n={n}: {got} vs {want}"
                );
            }
            let halves: Vec<half::f16> = b.iter().map(|x| half::f16::from_f32(*x)).collect();
            let wide: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
            let want = reference(&a, &wide);
            let mut kernels = vec![dot_f16(&a, &halves), dot_f16_portable(&a, &halves)];
            // Each SIMD path the CPU has, not only the one `dot_f16` picks.
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") && has!("fma") && has!("f16c") {
                    // SAFETY: the CPU has the features.
                    kernels.push(unsafe { dot_f16_avx2(&a, &halves) });
                }
                if has!("avx512f") {
                    // SAFETY: the CPU has the feature.
                    kernels.push(unsafe { dot_f16_avx512(&a, &halves) });
                }
            }
            for got in kernels {
                assert!(
                    (f64::from(got) - want).abs() < 1e-3,
                    "n={n}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn integer_kernels_are_exact_on_every_path_at_odd_lengths_and_extremes() {
        for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 384, 385] {
            let query: Vec<i16> = (0..n)
                .map(|i| ((i * 7919 % 65_535) as i32 - 32_767) as i16)
                .collect();
            let codes: Vec<i8> = (0..n)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect();
            let want: i64 = query
                .iter()
                .zip(&codes)
                .map(|(q, c)| i64::from(*q) * i64::from(*c))
                .sum();
            let mut kernels = vec![
                dot_i16_i8(&query, &codes),
                dot_i16_i8_portable(&query, &codes),
            ];
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx2") {
                    // SAFETY: the CPU has the feature.
                    kernels.push(unsafe { dot_i16_i8_avx2(&query, &codes) });
                }
                if has!("avx512bw") {
                    // SAFETY: the CPU has the feature.
                    kernels.push(unsafe { dot_i16_i8_avx512(&query, &codes) });
                }
            }
            for got in kernels {
                assert_eq!(i64::from(got), want, "n={n}");
            }
        }
        // The largest products, all of one sign: at 384 components the
        // whole 16-bit range stays inside an `i32` sum.
        let top = i16::MAX;
        assert_eq!(
            dot_i16_i8(&[top; 384], &[-127; 384]),
            -(i32::from(top) * 127 * 384)
        );
    }

    #[test]
    fn normalization_rejects_bad_vectors_with_typed_errors() {
        assert_eq!(
            normalized(&[1.0, 2.0], 3),
            Err(IndexError::DimensionMismatch {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            normalized(&[1.0, f32::NAN, 0.0], 3),
            Err(IndexError::NonFinite { index: 1 })
        );
        assert_eq!(
            normalized(&[f32::INFINITY, 0.0, 0.0], 3),
            Err(IndexError::NonFinite { index: 0 })
        );
        assert_eq!(normalized(&[0.0; 3], 3), Err(IndexError::ZeroVector));
    }

    #[test]
    fn normalization_survives_extreme_magnitudes() {
        for scale in [1e-40f32, 1e-20, 1.0, 1e20, f32::MAX / 2.0] {
            let v = normalized(&[scale, scale, 0.0], 3).unwrap();
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "scale {scale}: norm {norm}");
        }
    }
}
