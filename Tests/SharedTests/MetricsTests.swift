import Testing
@testable import Shared

/// The Prometheus text renderer, histogram counting, the registry and the process metrics.
@Suite struct MetricsTests {
    init() { EventLoop.shared.startInBackground() }

    @Test func rendersHelpTypeAndLabelledSamples() {
        let text = PrometheusText.render([
            MetricFamilySnapshot(name: "chat_requests_total", help: "Requests.", kind: .counter, samples: [
                MetricSample(labels: [MetricLabel("status", "2xx")], value: 3),
                MetricSample(labels: [MetricLabel("status", "5xx")], value: 0),
            ]),
            MetricFamilySnapshot(name: "chat_sockets", help: "Sockets.", kind: .gauge, samples: [MetricSample(value: 2.5)]),
        ])
        #expect(text == """
            # HELP chat_requests_total Requests.
            # TYPE chat_requests_total counter
            chat_requests_total{status="2xx"} 3
            chat_requests_total{status="5xx"} 0
            # HELP chat_sockets Sockets.
            # TYPE chat_sockets gauge
            chat_sockets 2.5

            """)
    }

    @Test func escapesHelpAndLabelValues() {
        #expect(PrometheusText.escapeHelp("a\\b\nc \"q\"") == "a\\\\b\\nc \"q\"")
        #expect(PrometheusText.escapeLabelValue("a\\b\nc \"q\"") == "a\\\\b\\nc \\\"q\\\"")
        #expect(PrometheusText.escapeLabelValue("plain") == "plain")
        let text = PrometheusText.render([MetricFamilySnapshot(name: "x", help: "h", kind: .counter,
                                                               samples: [MetricSample(labels: [MetricLabel("l", "\"")], value: 1)])])
        #expect(text.contains("x{l=\"\\\"\"} 1\n"))
    }

    @Test func formatsValues() {
        #expect(PrometheusText.format(0) == "0")
        #expect(PrometheusText.format(42) == "42")
        #expect(PrometheusText.format(-3) == "-3")
        #expect(PrometheusText.format(0.0005) == "0.0005")
        #expect(PrometheusText.format(2.5) == "2.5")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        #expect(PrometheusText.format(-.infinity) == "-Inf")
        #expect(PrometheusText.format(.nan) == "NaN")
        #expect(Double(PrometheusText.format(1e20)) == 1e20)
    }

    @Test func histogramBucketsAreCumulativeWithInfSumAndCount() {
        var histogram = HistogramValues(bounds: [1, 0.5, 2, 2, .infinity])
        #expect(histogram.bounds == [0.5, 1, 2])
        for value in [0.1, 0.5, 0.7, 3, 10] { histogram.observe(value) }
        #expect(histogram.counts == [2, 1, 0, 2])
        #expect(histogram.count == 5)
        #expect(histogram.sum == 14.3)
        let samples = histogram.samples()
        #expect(samples.map(\.suffix) == ["_bucket", "_bucket", "_bucket", "_bucket", "_sum", "_count"])
        #expect(samples.prefix(4).map { $0.labels.last?.value } == ["0.5", "1", "2", "+Inf"])
        #expect(samples.prefix(4).map(\.value) == [2, 3, 3, 5])
        #expect(samples[5].value == 5)
    }

    @Test func latencyBucketsRenderAsExpected() {
        let text = PrometheusText.render([MetricFamilySnapshot(name: "d_seconds", help: "D.", kind: .histogram,
                                                               samples: HistogramValues(bounds: HistogramValues.latencyBuckets).samples())])
        #expect(text.contains("d_seconds_bucket{le=\"0.0005\"} 0\n"))
        #expect(text.contains("d_seconds_bucket{le=\"2.5\"} 0\n"))
        #expect(text.contains("d_seconds_bucket{le=\"5\"} 0\n"))
        #expect(text.contains("d_seconds_bucket{le=\"+Inf\"} 0\n"))
        #expect(text.hasSuffix("d_seconds_sum 0\nd_seconds_count 0\n"))
    }

    @Test @LoopActor func registryRendersFamiliesInOrderAndReusesNames() {
        let registry = MetricsRegistry()
        let requests = registry.counter("r_total", help: "R.", labelName: "type", initialLabels: ["a", "b"])
        requests.increment("b")
        requests.increment("c", by: 2)
        #expect(registry.counter("r_total", help: "again") === requests)
        #expect(requests.value("b") == 1)
        let level = Level()
        _ = registry.gauge("g", help: "G.") { level.value }
        level.value = 9
        let set = registry.gauge("s", help: "S.")
        set.set(4)
        let latency = registry.histogram("h_seconds", help: "H.", buckets: [1])
        latency.observe(0.5)
        registry.sampledCounter("cpu_total", help: "C.") { 1.5 }
        #expect(registry.render() == """
            # HELP r_total R.
            # TYPE r_total counter
            r_total{type="a"} 0
            r_total{type="b"} 1
            r_total{type="c"} 2
            # HELP g G.
            # TYPE g gauge
            g 9
            # HELP s S.
            # TYPE s gauge
            s 4
            # HELP h_seconds H.
            # TYPE h_seconds histogram
            h_seconds_bucket{le="1"} 1
            h_seconds_bucket{le="+Inf"} 1
            h_seconds_sum 0.5
            h_seconds_count 1
            # HELP cpu_total C.
            # TYPE cpu_total counter
            cpu_total 1.5

            """)
    }

    @Test @LoopActor func unlabelledCounterIgnoresLabels() {
        let registry = MetricsRegistry()
        let counter = registry.counter("u_total", help: "U.")
        counter.increment()
        counter.increment("ignored")
        #expect(counter.value() == 2)
        #expect(registry.render().hasSuffix("u_total 2\n"))
    }

    @Test @LoopActor func processMetricsReadTheKernel() {
        let registry = MetricsRegistry()
        ProcessMetrics.register(in: registry)
        let families = registry.snapshot()
        #expect(families.map(\.name) == ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                                         "process_max_fds", "process_start_time_seconds"])
        #expect(families[1].kind == .counter)
        #expect((families[0].samples.first?.value ?? 0) > 1_000_000)
        #expect((families[2].samples.first?.value ?? 0) >= 3)
        #expect((families[3].samples.first?.value ?? 0) >= (families[2].samples.first?.value ?? 0))
        #expect((families[4].samples.first?.value ?? 0) > 1_600_000_000)
        #expect(ProcessMetrics.cpuSeconds() > 0)
    }

    @Test func parsesStatm() {
        #expect(ProcessMetrics.parseStatmResidentPages("12345 678 90 1 0 2 0\n") == 678)
        #expect(ProcessMetrics.parseStatmResidentPages("12345") == nil)
    }

    @Test func statusClasses() {
        #expect(HTTPMetrics.statusClass(101) == "1xx")
        #expect(HTTPMetrics.statusClass(204) == "2xx")
        #expect(HTTPMetrics.statusClass(304) == "3xx")
        #expect(HTTPMetrics.statusClass(429) == "4xx")
        #expect(HTTPMetrics.statusClass(503) == "5xx")
    }
}

/// A value a sampled gauge reads at scrape time.
@LoopActor private final class Level {
    var value = 7.0
}
