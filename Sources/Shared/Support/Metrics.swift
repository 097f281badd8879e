import Glibc
import Runtime

// Prometheus metrics without a client library: a loop-confined registry of counters, gauges and
// fixed-bucket histograms, and a pure renderer for the text exposition format 0.0.4.
// Everything that records runs on the loop, so no locks; a scrape renders the current values.

/// The kind of a metric family, as written on its `# TYPE` line.
package enum MetricKind: String, Sendable {
    /// Only goes up (resets with the process).
    case counter
    /// Goes up and down.
    case gauge
    /// Observations counted into cumulative buckets, with a sum and a count.
    case histogram
}

/// One line of a family: name suffix (`_bucket`, `_sum`, ...), labels and value.
package struct MetricSample: Sendable, Equatable {
    /// Appended to the family name (empty for counters and gauges).
    package var suffix: String
    /// Label pairs in output order.
    package var labels: [MetricLabel]
    /// The value.
    package var value: Double

    /// A sample.
    package init(suffix: String = "", labels: [MetricLabel] = [], value: Double) {
        self.suffix = suffix
        self.labels = labels
        self.value = value
    }
}

/// One `name="value"` label pair.
package struct MetricLabel: Sendable, Equatable {
    /// Label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
    package var name: String
    /// Label value, escaped when rendered.
    package var value: String

    /// A label pair.
    package init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A family's state at scrape time: what the renderer needs, nothing live.
package struct MetricFamilySnapshot: Sendable, Equatable {
    /// Family name, e.g. `chat_http_requests_total`.
    package var name: String
    /// One-line description for `# HELP`.
    package var help: String
    /// Counter, gauge or histogram.
    package var kind: MetricKind
    /// The family's lines.
    package var samples: [MetricSample]

    /// A snapshot.
    package init(name: String, help: String, kind: MetricKind, samples: [MetricSample]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.samples = samples
    }
}

/// Renders the Prometheus text exposition format, version 0.0.4.
package enum PrometheusText {
    /// The `Content-Type` of a scrape response.
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// All families, each with `# HELP` and `# TYPE`, in the given order; ends with a newline.
    package static func render(_ families: [MetricFamilySnapshot]) -> String {
        var out = ""
        out.reserveCapacity(families.count * 128)
        for family in families {
            out += "# HELP \(family.name) \(escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                out += family.name
                out += sample.suffix
                if !sample.labels.isEmpty {
                    out += "{"
                    out += sample.labels.map { "\($0.name)=\"\(escapeLabelValue($0.value))\"" }.joined(separator: ",")
                    out += "}"
                }
                out += " "
                out += format(sample.value)
                out += "\n"
            }
        }
        return out
    }

    /// `# HELP` text: backslash and line feed escaped.
    package static func escapeHelp(_ text: String) -> String {
        escape(text, quotes: false)
    }

    /// A label value: backslash, double quote and line feed escaped.
    package static func escapeLabelValue(_ text: String) -> String {
        escape(text, quotes: true)
    }

    private static func escape(_ text: String, quotes: Bool) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\n") || (quotes && $0 == UInt8(ascii: "\"")) }) else {
            return text
        }
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quotes: out += "\\\""
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// A sample value: integers without a fraction, `+Inf`, `-Inf`, `NaN` as the format spells them.
    package static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        // Whole numbers below 2^53 print exactly as integers; others use Swift's shortest round-trip form.
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return value.description
    }
}

/// Fixed-bucket histogram counts as a value (the histogram family wraps one).
package struct HistogramValues: Sendable, Equatable {
    /// Default latency buckets in seconds, 0.5 ms to 5 s.
    package static let latencyBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    /// Upper bounds, ascending; `+Inf` is implicit.
    package let bounds: [Double]
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    package private(set) var counts: [UInt64]
    /// Sum of all observations.
    package private(set) var sum: Double = 0
    /// Number of observations.
    package private(set) var count: UInt64 = 0

    /// Empty counts for `bounds` (sorted here; duplicates and non-finite bounds dropped).
    package init(bounds: [Double]) {
        var sorted: [Double] = []
        for bound in bounds.sorted() where bound.isFinite && sorted.last != bound { sorted.append(bound) }
        self.bounds = sorted
        counts = Array(repeating: 0, count: sorted.count + 1)
    }

    /// Counts one observation into the first bucket whose bound is >= `value`.
    package mutating func observe(_ value: Double) {
        var index = bounds.count
        // Few buckets: a linear scan beats binary search here.
        for (position, bound) in bounds.enumerated() where value <= bound {
            index = position
            break
        }
        counts[index] += 1
        sum += value
        count += 1
    }

    /// `_bucket` (cumulative, with `le`), `_sum` and `_count` samples.
    package func samples(labels: [MetricLabel] = []) -> [MetricSample] {
        var result: [MetricSample] = []
        result.reserveCapacity(bounds.count + 3)
        var cumulative: UInt64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += counts[index]
            result.append(MetricSample(suffix: "_bucket", labels: labels + [MetricLabel("le", PrometheusText.format(bound))], value: Double(cumulative)))
        }
        result.append(MetricSample(suffix: "_bucket", labels: labels + [MetricLabel("le", "+Inf")], value: Double(count)))
        result.append(MetricSample(suffix: "_sum", labels: labels, value: sum))
        result.append(MetricSample(suffix: "_count", labels: labels, value: Double(count)))
        return result
    }
}

/// A family the registry can snapshot.
@LoopActor
package protocol MetricFamily: AnyObject {
    /// Family name.
    var name: String { get }
    /// The family's current state.
    func snapshot() -> MetricFamilySnapshot
}

/// A counter, optionally with one label (callers keep its values to a small fixed set).
@LoopActor
package final class MetricCounter: MetricFamily {
    package let name: String
    private let help: String
    private let labelName: String?
    /// Value per label value, in first-seen order ("" when unlabeled).
    private var values: [(label: String, value: Double)] = []

    fileprivate init(name: String, help: String, labelName: String?, initialLabels: [String]) {
        self.name = name
        self.help = help
        self.labelName = labelName
        // Zero series up front, so a scrape shows them before anything happens.
        values = labelName == nil ? [("", 0)] : initialLabels.map { ($0, 0) }
    }

    /// Adds `amount` (>= 0) to the series `label` (ignored for an unlabeled counter).
    package func increment(_ label: String = "", by amount: Double = 1) {
        let key = labelName == nil ? "" : label
        if let index = values.firstIndex(where: { $0.label == key }) {
            values[index].value += amount
        } else {
            values.append((key, amount))
        }
    }

    /// The current value of series `label`.
    package func value(_ label: String = "") -> Double {
        values.first { $0.label == (labelName == nil ? "" : label) }?.value ?? 0
    }

    package func snapshot() -> MetricFamilySnapshot {
        let samples = values.map { entry in
            MetricSample(labels: labelName.map { [MetricLabel($0, entry.label)] } ?? [], value: entry.value)
        }
        return MetricFamilySnapshot(name: name, help: help, kind: .counter, samples: samples)
    }
}

/// A gauge set by its owner, or a sampled gauge/counter read at scrape time.
@LoopActor
package final class MetricGauge: MetricFamily {
    package let name: String
    private let help: String
    private let kind: MetricKind
    private var sample: (@LoopActor () -> Double)?
    private var current: Double = 0

    fileprivate init(name: String, help: String, kind: MetricKind, sample: (@LoopActor () -> Double)?) {
        self.name = name
        self.help = help
        self.kind = kind
        self.sample = sample
    }

    /// The value a scrape reports.
    package var value: Double { sample?() ?? current }

    /// Sets the value (a sampled gauge stops sampling).
    package func set(_ value: Double) {
        sample = nil
        current = value
    }

    /// Reads the value from `sample` at each scrape from now on (replacing any earlier source).
    package func sample(_ sample: @escaping @LoopActor () -> Double) {
        self.sample = sample
    }

    package func snapshot() -> MetricFamilySnapshot {
        MetricFamilySnapshot(name: name, help: help, kind: kind, samples: [MetricSample(value: value)])
    }
}

/// A gauge with one label whose series come and go (e.g. one per shard this process holds).
@LoopActor
package final class MetricLabeledGauge: MetricFamily {
    package let name: String
    private let help: String
    private let labelName: String
    /// Value per label value, in first-set order.
    private var values: [(label: String, value: Double)] = []

    fileprivate init(name: String, help: String, labelName: String) {
        self.name = name
        self.help = help
        self.labelName = labelName
    }

    /// Sets series `label` to `value`, creating it on first use.
    package func set(_ label: String, _ value: Double) {
        if let index = values.firstIndex(where: { $0.label == label }) {
            values[index].value = value
        } else {
            values.append((label, value))
        }
    }

    /// Drops series `label` (a scrape no longer shows it).
    package func remove(_ label: String) {
        values.removeAll { $0.label == label }
    }

    /// The current value of series `label`, if shown.
    package func value(_ label: String) -> Double? {
        values.first { $0.label == label }?.value
    }

    package func snapshot() -> MetricFamilySnapshot {
        MetricFamilySnapshot(name: name, help: help, kind: .gauge,
                             samples: values.map { MetricSample(labels: [MetricLabel(labelName, $0.label)], value: $0.value) })
    }
}

/// A histogram with fixed buckets, unlabeled.
@LoopActor
package final class MetricHistogram: MetricFamily {
    package let name: String
    private let help: String
    /// The counts so far.
    package private(set) var values: HistogramValues

    fileprivate init(name: String, help: String, buckets: [Double]) {
        self.name = name
        self.help = help
        values = HistogramValues(bounds: buckets)
    }

    /// Counts one observation.
    package func observe(_ value: Double) {
        values.observe(value)
    }

    /// Observes the seconds elapsed since `start` (a `MonotonicClock.now()` reading).
    package func observeSince(_ start: UInt64) {
        values.observe(Double(MonotonicClock.now() &- start) / 1_000_000_000)
    }

    package func snapshot() -> MetricFamilySnapshot {
        MetricFamilySnapshot(name: name, help: help, kind: .histogram, samples: values.samples())
    }
}

/// The process's metric families, in registration order. Registering a name again returns the
/// family already registered, so shared code can ask for its metric wherever it records.
@LoopActor
package final class MetricsRegistry {
    /// The process-wide registry that `/metrics` renders.
    package static let shared = MetricsRegistry()

    private var families: [any MetricFamily] = []

    /// An empty registry (tests; the services use `shared`).
    package init() {}

    /// The counter `name`, registered on first use. `labelName` gives it one label; `initialLabels`
    /// are series shown at zero from the start.
    package func counter(_ name: String, help: String, labelName: String? = nil, initialLabels: [String] = []) -> MetricCounter {
        if let existing = families.first(where: { $0.name == name }) as? MetricCounter { return existing }
        checkUnused(name)
        let counter = MetricCounter(name: name, help: help, labelName: labelName, initialLabels: initialLabels)
        families.append(counter)
        return counter
    }

    /// The gauge `name`, registered on first use; with `sample`, its value is read at each scrape.
    package func gauge(_ name: String, help: String, sample: (@LoopActor () -> Double)? = nil) -> MetricGauge {
        if let existing = families.first(where: { $0.name == name }) as? MetricGauge {
            if let sample { existing.sample(sample) }
            return existing
        }
        checkUnused(name)
        let gauge = MetricGauge(name: name, help: help, kind: .gauge, sample: sample)
        families.append(gauge)
        return gauge
    }

    /// The labelled gauge `name`, registered on first use.
    package func labeledGauge(_ name: String, help: String, labelName: String) -> MetricLabeledGauge {
        if let existing = families.first(where: { $0.name == name }) as? MetricLabeledGauge { return existing }
        checkUnused(name)
        let gauge = MetricLabeledGauge(name: name, help: help, labelName: labelName)
        families.append(gauge)
        return gauge
    }

    /// A counter whose value is read at each scrape (e.g. CPU seconds from the kernel).
    @discardableResult
    package func sampledCounter(_ name: String, help: String, sample: @escaping @LoopActor () -> Double) -> MetricGauge {
        if let existing = families.first(where: { $0.name == name }) as? MetricGauge {
            existing.sample(sample)
            return existing
        }
        checkUnused(name)
        let counter = MetricGauge(name: name, help: help, kind: .counter, sample: sample)
        families.append(counter)
        return counter
    }

    /// The histogram `name`, registered on first use.
    package func histogram(_ name: String, help: String, buckets: [Double] = HistogramValues.latencyBuckets) -> MetricHistogram {
        if let existing = families.first(where: { $0.name == name }) as? MetricHistogram { return existing }
        checkUnused(name)
        let histogram = MetricHistogram(name: name, help: help, buckets: buckets)
        families.append(histogram)
        return histogram
    }

    /// One name, one family: asking for a name under another type is a programming error.
    private func checkUnused(_ name: String) {
        precondition(!families.contains { $0.name == name }, "metric \(name) is already registered with another type")
    }

    /// Every family's current state, in registration order.
    package func snapshot() -> [MetricFamilySnapshot] {
        families.map { $0.snapshot() }
    }

    /// The scrape body.
    package func render() -> String {
        PrometheusText.render(snapshot())
    }
}
