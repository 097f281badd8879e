/// PostgreSQL array literals, sent as one text parameter and cast in SQL (`$1::bigint[]`), so a
/// whole batch travels in a fixed statement: `... FROM unnest($1::bigint[], $2::text[]) AS t(id, name)`.
package enum PostgresArrayLiteral {
    /// `{1,2,3}`.
    package static func integers(_ values: some Sequence<Int64>) -> String {
        var output = "{"
        var first = true
        for value in values {
            if !first { output += "," }
            first = false
            output += String(value)
        }
        return output + "}"
    }

    /// `{1,NULL,3}`: `nil` elements as `NULL`.
    package static func integers(_ values: some Sequence<Int64?>) -> String {
        var output = "{"
        var first = true
        for value in values {
            if !first { output += "," }
            first = false
            output += value.map { String($0) } ?? "NULL"
        }
        return output + "}"
    }

    /// `{"a","b\"c",NULL}`: every element quoted, `"` and `\` escaped, nil as `NULL`. Strings must not
    /// contain NUL (PostgreSQL text cannot hold it; see `PostgresValue.encodingProblem`).
    package static func texts(_ values: some Sequence<String?>) -> String {
        var output: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        for value in values {
            if !first { output.append(UInt8(ascii: ",")) }
            first = false
            guard let value else {
                output.append(contentsOf: "NULL".utf8)
                continue
            }
            output.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { output.append(UInt8(ascii: "\\")) }
                output.append(byte)
            }
            output.append(UInt8(ascii: "\""))
        }
        output.append(UInt8(ascii: "}"))
        return String(decoding: output, as: UTF8.self)
    }

    /// `texts` for non-optional strings.
    package static func texts(_ values: some Sequence<String>) -> String {
        texts(values.lazy.map { Optional($0) })
    }
}
