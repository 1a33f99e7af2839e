internal import CGSL

/// The single place where GSL is configured and its status codes become Swift errors.
///
/// GSL's default error handler aborts the process; ``GSL/ensureInitialized()`` turns it off once,
/// after which every GSL routine reports failure through its return value, which ``GSL/check(_:_:)``
/// converts into ``StatisticsError``.
enum GSL {
    private static let initialized: Bool = {
        gsl_set_error_handler_off()
        return true
    }()

    @inline(__always)
    static func ensureInitialized() {
        _ = initialized
    }

    static func check(_ status: Int32, _ what: String) throws(StatisticsError) {
        guard status == GSL_SUCCESS else {
            let reason = String(cString: gsl_strerror(status))
            throw StatisticsError(field: what, reason: "numerical failure in GSL: \(reason)")
        }
    }

    /// Box handed to GSL as `void *params` so a Swift closure can be called from C.
    private final class FunctionBox {
        let body: (Double) -> Double
        init(_ body: @escaping (Double) -> Double) { self.body = body }
    }

    private static func withGSLFunction<R>(_ f: @escaping (Double) -> Double, _ use: (inout gsl_function) -> R) -> R {
        let box = FunctionBox(f)
        return withExtendedLifetime(box) {
            var fn = gsl_function(
                function: { x, params in
                    Unmanaged<FunctionBox>.fromOpaque(params!).takeUnretainedValue().body(x)
                },
                params: Unmanaged.passUnretained(box).toOpaque())
            return use(&fn)
        }
    }

    /// Root of `f` in the bracketing interval [lo, hi] with Brent's method (`gsl_root_fsolver_brent`).
    ///
    /// - Throws: ``StatisticsError`` with `field` when the interval does not bracket a root or GSL fails.
    static func brent(
        field: String, lo: Double, hi: Double, relativeTolerance: Double = 1e-13,
        _ f: @escaping (Double) -> Double
    ) throws(StatisticsError) -> Double {
        ensureInitialized()
        let flo = f(lo), fhi = f(hi)
        if flo == 0 { return lo }
        if fhi == 0 { return hi }
        guard flo.isFinite, fhi.isFinite, (flo < 0) != (fhi < 0) else {
            throw StatisticsError(field: field, reason: "no solution in the admissible range; relax the requirement")
        }
        guard let solver = gsl_root_fsolver_alloc(referee_root_brent()) else {
            throw StatisticsError(field: field, reason: "numerical failure in GSL: cannot allocate the root solver")
        }
        defer { gsl_root_fsolver_free(solver) }
        let result: Result<Double, StatisticsError> = withGSLFunction(f) { fn in
            var status = gsl_root_fsolver_set(solver, &fn, lo, hi)
            guard status == GSL_SUCCESS else { return .failure(StatisticsError(field: field, reason: "numerical failure in GSL: \(String(cString: gsl_strerror(status)))")) }
            for _ in 0..<500 {
                status = gsl_root_fsolver_iterate(solver)
                guard status == GSL_SUCCESS else { break }
                let a = gsl_root_fsolver_x_lower(solver), b = gsl_root_fsolver_x_upper(solver)
                status = gsl_root_test_interval(a, b, 0, relativeTolerance)
                if status == GSL_SUCCESS { return .success(gsl_root_fsolver_root(solver)) }
                guard status == GSL_CONTINUE else { break }
            }
            return .failure(StatisticsError(field: field, reason: "the root finder did not converge (GSL status \(status))"))
        }
        return try result.get()
    }

    /// ∫ f over [a, b] with adaptive Gauss–Kronrod (`gsl_integration_qag`, 61-point rule).
    /// - Parameter singular: the integrand may be unbounded at an end (a Beta density with a parameter
    ///   below 1): GSL's QAGS, which extrapolates, instead of QAG.
    static func integrate(
        field: String, from a: Double, to b: Double, relativeTolerance: Double = 1e-12, absoluteTolerance: Double = 0, acceptableRelativeError: Double = 1e-10,
        singular: Bool = false, _ f: @escaping (Double) -> Double
    ) throws(StatisticsError) -> Double {
        ensureInitialized()
        let limit = 2000
        guard let ws = gsl_integration_workspace_alloc(limit) else {
            throw StatisticsError(field: field, reason: "numerical failure in GSL: cannot allocate the integration workspace")
        }
        defer { gsl_integration_workspace_free(ws) }
        var value = 0.0, abserr = 0.0
        let status: Int32 = withGSLFunction(f) { fn in
            singular
                ? gsl_integration_qags(&fn, a, b, absoluteTolerance, relativeTolerance, limit, ws, &value, &abserr)
                : gsl_integration_qag(&fn, a, b, absoluteTolerance, relativeTolerance, limit, Int32(GSL_INTEG_GAUSS61), ws, &value, &abserr)
        }
        // When GSL stops early (round-off, subdivision limit) its estimate is still usable if the error
        // bound is small; anything else is an error.
        if status != GSL_SUCCESS && !(value.isFinite && abserr <= acceptableRelativeError * abs(value) + absoluteTolerance) {
            try check(status, field)
        }
        return value
    }
}

/// Public entry so executables can switch off GSL's aborting error handler at start-up.
public enum StatisticsRuntime {
    public static func initialize() { GSL.ensureInitialized() }
}

/// Input validation shared by every method; each failure names the wire field and says how to fix it.
enum Check {
    static func finite(_ x: Double, _ field: @autoclosure () -> String) throws(StatisticsError) -> Double {
        guard x.isFinite else { throw StatisticsError(field: field(), reason: "must be a finite number, got \(x)") }
        return x
    }

    /// A non-negative finite count.
    static func count(_ x: Double, _ field: @autoclosure () -> String) throws(StatisticsError) -> Double {
        guard x.isFinite, x >= 0 else { throw StatisticsError(field: field(), reason: "must be a non-negative finite count, got \(x)") }
        return x
    }

    /// Sample size with a minimum (1 for a mean, 2 where a variance is estimated).
    static func n(_ x: Double, _ field: @autoclosure () -> String, atLeast minimum: Double) throws(StatisticsError) -> Double {
        guard x.isFinite else { throw StatisticsError(field: field(), reason: "must be a finite number, got \(x)") }
        guard x >= minimum else {
            let why = minimum >= 2 ? "at least \(Int(minimum)) observations are needed to estimate a variance" : "at least \(Int(minimum)) observation is needed"
            throw StatisticsError(field: field(), reason: "\(why), got \(x); collect more data")
        }
        return x
    }

    static func alpha(_ a: Double, _ field: @autoclosure () -> String = "alpha") throws(StatisticsError) -> Double {
        guard a.isFinite, a > 0, a < 1 else { throw StatisticsError(field: field(), reason: "must be strictly between 0 and 1 (e.g. 0.05), got \(a)") }
        return a
    }

    static func probability(_ p: Double, _ field: @autoclosure () -> String) throws(StatisticsError) -> Double {
        guard p.isFinite, p >= 0, p <= 1 else { throw StatisticsError(field: field(), reason: "must be a probability in [0, 1], got \(p)") }
        return p
    }

    static func positive(_ x: Double, _ field: @autoclosure () -> String) throws(StatisticsError) -> Double {
        guard x.isFinite, x > 0 else { throw StatisticsError(field: field(), reason: "must be a positive finite number, got \(x)") }
        return x
    }

    /// Last line of defence: a computed quantity must be finite.
    static func result(_ x: Double, _ field: @autoclosure () -> String, _ what: String) throws(StatisticsError) -> Double {
        guard x.isFinite else { throw StatisticsError(field: field(), reason: "the \(what) is not finite for these inputs (overflow or degenerate data); check the magnitudes") }
        return x
    }
}
