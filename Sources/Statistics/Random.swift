internal import CGSL

/// A seeded Mersenne Twister (`gsl_rng_mt19937`) owned by a class that frees it in `deinit`.
///
/// Conforms to `RandomNumberGenerator`, so `Double.random(in:using:)` and friends work with it.
/// Not thread-safe; each task should own its generator.
/// See https://www.gnu.org/software/gsl/doc/html/rng.html
public final class GSLRandom: RandomNumberGenerator {
    private let rng: UnsafeMutablePointer<gsl_rng>

    /// - Parameter seed: seed passed to `gsl_rng_set` (GSL maps 0 to its default seed).
    public init(seed: UInt) {
        GSL.ensureInitialized()
        guard let r = gsl_rng_alloc(referee_rng_mt19937()) else { fatalError("gsl_rng_alloc failed: out of memory") }
        rng = r
        gsl_rng_set(rng, seed)
    }

    deinit { gsl_rng_free(rng) }

    /// 64 random bits from two 32-bit draws.
    public func next() -> UInt64 {
        let hi = UInt64(gsl_rng_get(rng)) & 0xFFFF_FFFF
        let lo = UInt64(gsl_rng_get(rng)) & 0xFFFF_FFFF
        return hi << 32 | lo
    }

    /// Uniform draw in [0, 1) (`gsl_rng_uniform`).
    public func uniform() -> Double { gsl_rng_uniform(rng) }

    /// Normal draw with the given mean and standard deviation (`gsl_ran_gaussian`).
    public func normal(mean: Double = 0, sd: Double = 1) -> Double { mean + gsl_ran_gaussian(rng, sd) }
}
