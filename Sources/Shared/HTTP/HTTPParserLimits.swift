/// Size limits the request parser enforces, each answered with its own status so clients learn
/// which one they hit. Defaults follow common servers (nginx: 8 KiB lines, 1 MiB bodies).
package struct HTTPParserLimits: Sendable, Equatable {
    /// Default for `maxRequestLineBytes`.
    package static let defaultMaxRequestLineBytes = 8192
    /// Default for `maxHeaderBytes`.
    package static let defaultMaxHeaderBytes = 16384
    /// Default for `maxHeaderCount`.
    package static let defaultMaxHeaderCount = 100
    /// Default for `maxBodyBytes` (1 MiB).
    package static let defaultMaxBodyBytes = 1 << 20
    /// Default for `maxChunkLineBytes`.
    package static let defaultMaxChunkLineBytes = 1024
    /// Default for `maxLeadingEmptyLines`.
    package static let defaultMaxLeadingEmptyLines = 8

    /// Longest request line, without its CRLF; longer gives 414.
    package var maxRequestLineBytes: Int
    /// Largest header block (every field line with its line end, plus the empty line), and also the
    /// budget for chunked trailers; larger gives 431.
    package var maxHeaderBytes: Int
    /// Most header fields (and trailer fields) per request; more gives 431.
    package var maxHeaderCount: Int
    /// Largest body, checked from `Content-Length` before the body is read and while de-chunking;
    /// larger gives 413.
    package var maxBodyBytes: Int
    /// Longest chunk-size line including extensions (which are ignored); longer gives 400.
    package var maxChunkLineBytes: Int
    /// Empty lines tolerated before a request line (RFC 9112 §2.2); more gives 400.
    package var maxLeadingEmptyLines: Int

    /// Limits with every value defaulted unless given.
    package init(
        maxRequestLineBytes: Int = defaultMaxRequestLineBytes,
        maxHeaderBytes: Int = defaultMaxHeaderBytes,
        maxHeaderCount: Int = defaultMaxHeaderCount,
        maxBodyBytes: Int = defaultMaxBodyBytes,
        maxChunkLineBytes: Int = defaultMaxChunkLineBytes,
        maxLeadingEmptyLines: Int = defaultMaxLeadingEmptyLines
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
        self.maxLeadingEmptyLines = maxLeadingEmptyLines
    }
}
