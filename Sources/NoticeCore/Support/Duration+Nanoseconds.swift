extension Duration {
    /// The duration in nanoseconds, saturating at `Int64.min` / `Int64.max` (about 292 years)
    /// instead of trapping: configured and client-given durations may be absurd.
    public var saturatedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return self < .zero ? .min : .max }
        let (sum, sumOverflow) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        guard !sumOverflow else { return self < .zero ? .min : .max }
        return sum
    }
}
