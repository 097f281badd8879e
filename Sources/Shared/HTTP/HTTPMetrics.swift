import Runtime
import Support

/// The HTTP layer's metric families in `MetricsRegistry.shared`.
@LoopActor
package enum HTTPMetrics {
    /// HTTP responses by status class (`2xx`, `4xx`, ...).
    package static let requests = MetricsRegistry.shared.counter(
        "chat_http_requests_total", help: "HTTP responses sent, by status class.", labelName: "status",
        initialLabels: ["2xx", "4xx", "5xx"])

    /// `503` responses on their own (overload, a dependency down, not ready): the 5xx class mixes
    /// them with bugs.
    package static let unavailable = MetricsRegistry.shared.counter(
        "chat_http_unavailable_total", help: "HTTP 503 responses sent (overloaded, dependency unavailable, not ready).")

    /// Counts one response.
    package static func record(status code: Int) {
        requests.increment(statusClass(code))
        if code == 503 { unavailable.increment() }
    }

    /// `2xx` … `5xx` for a status code (bounded label values).
    package nonisolated static func statusClass(_ code: Int) -> String {
        switch code {
        case 100..<200: "1xx"
        case 200..<300: "2xx"
        case 300..<400: "3xx"
        case 400..<500: "4xx"
        default: "5xx"
        }
    }
}
