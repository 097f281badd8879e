/// The result of one statement: column names and rows of text-format values (`nil` = SQL `NULL`).
///
/// A collection of `PostgresRow` views, so rows decode naturally:
/// `try rows.map { try ($0.int64("id"), $0.string("username")) }`.
package struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names in result order. With duplicate names (joins), lookups by name find the first.
    package let columns: [String]
    /// Column type OIDs in result order (e.g. 20 = int8, 25 = text), for callers that care.
    package let columnTypes: [UInt32]
    /// Rows with one cell per column, row-major, flat (one allocation for the whole result).
    private let cells: [String?]
    /// Rows affected by INSERT/UPDATE/DELETE/MERGE (or returned by SELECT), from `PQcmdTuples`;
    /// 0 for commands without a count.
    package let affectedRows: Int
    /// The command tag, e.g. `INSERT 0 1`, `UPDATE 3`, `COMMIT`, `ROLLBACK` (`PQcmdStatus`).
    package let commandTag: String

    /// Builds a result. `cells.count` must be a multiple of `columns.count`.
    package init(columns: [String], columnTypes: [UInt32]? = nil, cells: [String?], affectedRows: Int = 0,
                 commandTag: String = "") {
        precondition(columns.isEmpty ? cells.isEmpty : cells.count % columns.count == 0, "ragged result")
        self.columns = columns
        self.columnTypes = columnTypes ?? Array(repeating: 0, count: columns.count)
        self.cells = cells
        self.affectedRows = affectedRows
        self.commandTag = commandTag
    }

    /// An empty result for commands without rows.
    package static func empty(commandTag: String = "", affectedRows: Int = 0) -> PostgresRows {
        PostgresRows(columns: [], cells: [], affectedRows: affectedRows, commandTag: commandTag)
    }

    /// Rows as arrays of cells (copies; prefer iterating `PostgresRow`s).
    package var rows: [[String?]] { map { Array($0.cells) } }

    package var startIndex: Int { 0 }
    package var endIndex: Int { columns.isEmpty ? 0 : cells.count / columns.count }
    package subscript(position: Int) -> PostgresRow { PostgresRow(result: self, index: position) }

    /// Index of a column by name, if present.
    package func columnIndex(_ name: String) -> Int? { columns.firstIndex(of: name) }

    fileprivate func cell(row: Int, column: Int) -> String? { cells[row * columns.count + column] }
    fileprivate func rowCells(_ row: Int) -> ArraySlice<String?> {
        cells[row * columns.count ..< (row + 1) * columns.count]
    }

    // MARK: Accessors by (column, row), for single-row results: `rows.int64("id", 0)`.

    private func row(_ index: Int, _ column: String) throws(PostgresError) -> PostgresRow {
        guard index >= 0 && index < count else {
            throw .decoding(column: column, reason: "row \(index) requested but the result has \(count) row(s)")
        }
        return self[index]
    }

    /// The text of `column` in `row`; throws if NULL or missing.
    package func string(_ column: String, _ row: Int = 0) throws(PostgresError) -> String {
        try self.row(row, column).string(column)
    }
    /// `column` in `row` as `Int64`; throws if NULL, missing or not an integer.
    package func int64(_ column: String, _ row: Int = 0) throws(PostgresError) -> Int64 {
        try self.row(row, column).int64(column)
    }
    /// `column` in `row` as `Bool` (`t`/`f`); throws if NULL, missing or not a boolean.
    package func bool(_ column: String, _ row: Int = 0) throws(PostgresError) -> Bool {
        try self.row(row, column).bool(column)
    }
    /// `column` in `row` as `Double`; throws if NULL, missing or not a number.
    package func double(_ column: String, _ row: Int = 0) throws(PostgresError) -> Double {
        try self.row(row, column).double(column)
    }
    /// Whether `column` in `row` is NULL; throws if the column or row is missing.
    package func isNull(_ column: String, _ row: Int = 0) throws(PostgresError) -> Bool {
        try self.row(row, column).isNull(column)
    }
}

/// One row of a `PostgresRows`, with typed accessors by column name.
///
/// Non-optional accessors throw `PostgresError.decoding` when the column is missing, NULL or badly
/// formatted; the `optional…` forms return `nil` for NULL.
package struct PostgresRow: Sendable {
    private let result: PostgresRows
    /// The row's position in its result.
    package let index: Int

    fileprivate init(result: PostgresRows, index: Int) {
        self.result = result
        self.index = index
    }

    /// The row's cells in column order.
    package var cells: ArraySlice<String?> { result.rowCells(index) }

    /// The raw text of `column` (`nil` = NULL); throws only if the column does not exist.
    package func raw(_ column: String) throws(PostgresError) -> String? {
        guard let position = result.columnIndex(column) else {
            throw .decoding(column: column, reason: "no such column (have: \(result.columns.joined(separator: ", ")))")
        }
        return result.cell(row: index, column: position)
    }

    /// Whether `column` is NULL.
    package func isNull(_ column: String) throws(PostgresError) -> Bool { try raw(column) == nil }

    private func required(_ column: String) throws(PostgresError) -> String {
        guard let text = try raw(column) else { throw .decoding(column: column, reason: "is NULL") }
        return text
    }

    private func decode<T>(_ column: String, _ text: String?, as type: String,
                           _ parse: (String) -> T?) throws(PostgresError) -> T? {
        guard let text else { return nil }
        guard let value = parse(text) else {
            throw .decoding(column: column, reason: "\"\(text.prefix(40))\" is not \(type)")
        }
        return value
    }

    // MARK: Required values

    /// The column's text; throws if NULL.
    package func string(_ column: String) throws(PostgresError) -> String { try required(column) }

    /// The column as `Int64` (`smallint`, `integer`, `bigint`).
    package func int64(_ column: String) throws(PostgresError) -> Int64 {
        guard let value = try optionalInt64(column) else { throw .decoding(column: column, reason: "is NULL") }
        return value
    }

    /// The column as `Int`.
    package func int(_ column: String) throws(PostgresError) -> Int { Int(try int64(column)) }

    /// The column as `Bool` (PostgreSQL's text form is `t` / `f`).
    package func bool(_ column: String) throws(PostgresError) -> Bool {
        guard let value = try optionalBool(column) else { throw .decoding(column: column, reason: "is NULL") }
        return value
    }

    /// The column as `Double` (`real`, `double precision`, `numeric`, integers; also `NaN`, `±Infinity`).
    package func double(_ column: String) throws(PostgresError) -> Double {
        guard let value = try optionalDouble(column) else { throw .decoding(column: column, reason: "is NULL") }
        return value
    }

    /// The column as bytes (`bytea` in hex output format).
    package func bytes(_ column: String) throws(PostgresError) -> [UInt8] {
        guard let value = try optionalBytes(column) else { throw .decoding(column: column, reason: "is NULL") }
        return value
    }

    // MARK: Nullable values

    /// The column's text, `nil` for NULL.
    package func optionalString(_ column: String) throws(PostgresError) -> String? { try raw(column) }

    /// The column as `Int64`, `nil` for NULL.
    package func optionalInt64(_ column: String) throws(PostgresError) -> Int64? {
        try decode(column, try raw(column), as: "an integer") { Int64($0) }
    }

    /// The column as `Int`, `nil` for NULL.
    package func optionalInt(_ column: String) throws(PostgresError) -> Int? { try optionalInt64(column).map { Int($0) } }

    /// The column as `Bool`, `nil` for NULL.
    package func optionalBool(_ column: String) throws(PostgresError) -> Bool? {
        try decode(column, try raw(column), as: "a boolean (t/f)") { text in
            text == "t" ? true : text == "f" ? false : nil
        }
    }

    /// The column as `Double`, `nil` for NULL.
    package func optionalDouble(_ column: String) throws(PostgresError) -> Double? {
        try decode(column, try raw(column), as: "a number") { Double($0) }
    }

    /// The column as bytes, `nil` for NULL.
    package func optionalBytes(_ column: String) throws(PostgresError) -> [UInt8]? {
        try decode(column, try raw(column), as: "hex bytea (\\x...; is bytea_output = hex?)") {
            PostgresBytea.decodeHex($0)
        }
    }
}
