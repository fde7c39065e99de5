//! Lagrange interpolation at 0 over the identifiers of the partials being combined.
//!
//! For the set S of FROST identifiers (the x-coordinates of the shares),
//! λ_i = Π_{j∈S, j≠i} j / (j − i), so that s = Σ_{i∈S} λ_i·s_i whenever |S| ≥ t and so
//! s·E = Σ λ_i·(s_i·E). The interpolation is over exactly the given set.

use super::group::PrimeGroup;
use super::DecryptError;

/// The coefficients λ_i for `ids`, in the same order. Identifiers must be non-zero and distinct.
pub(crate) fn coefficients_at_zero<G: PrimeGroup>(
    ids: &[u16],
) -> Result<Vec<G::Scalar>, DecryptError> {
    let mut out = Vec::with_capacity(ids.len());
    for (n, &i) in ids.iter().enumerate() {
        if i == 0 {
            return Err(DecryptError::ZeroIdentifier);
        }
        if ids[..n].contains(&i) {
            return Err(DecryptError::DuplicateIdentifier(i));
        }
        let xi = G::scalar_from_u16(i);
        let mut num = G::scalar_from_u16(1);
        let mut den = G::scalar_from_u16(1);
        for &j in ids.iter().filter(|&&j| j != i) {
            let xj = G::scalar_from_u16(j);
            num = num * xj;
            den = den * (xj - xi);
        }
        // Non-zero: distinct identifiers below 2^16 differ modulo a prime order > 2^16.
        let den_inv = G::invert(&den).ok_or(DecryptError::Internal("zero Lagrange denominator"))?;
        out.push(num * den_inv);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::secp256k1::Secp256k1;
    use super::super::x25519::Ed25519;
    use super::*;

    /// f(x) = a0 + a1·x + a2·x², shares at the given ids, recombined at 0.
    fn interpolates<G: PrimeGroup>() {
        let a = [11u16, 22, 33].map(G::scalar_from_u16);
        let f = |x: u16| {
            let x = G::scalar_from_u16(x);
            a[0] + a[1] * x + a[2] * x * x
        };
        for ids in [[1u16, 2, 3], [2, 4, 5], [5, 1, 3], [7, 65535, 300]] {
            let lambdas = coefficients_at_zero::<G>(&ids).unwrap();
            let mut acc = G::scalar_from_u16(0);
            for (l, &i) in lambdas.iter().zip(&ids) {
                acc = acc + *l * f(i);
            }
            assert_eq!(
                G::scalar_to_bytes(&acc),
                G::scalar_to_bytes(&a[0]),
                "ids {ids:?}"
            );
        }
    }

    #[test]
    fn lagrange_interpolates_ed25519() {
        interpolates::<Ed25519>();
    }

    #[test]
    fn lagrange_interpolates_secp256k1() {
        interpolates::<Secp256k1>();
    }

    #[test]
    fn lagrange_rejects_zero_and_duplicate_ids() {
        assert_eq!(
            coefficients_at_zero::<Ed25519>(&[0, 1, 2]).err(),
            Some(DecryptError::ZeroIdentifier)
        );
        assert_eq!(
            coefficients_at_zero::<Secp256k1>(&[1, 2, 1]).err(),
            Some(DecryptError::DuplicateIdentifier(1))
        );
    }
}
