import Testing

@testable import PostgresStorage

/// The store's SQLite-style parameters in PostgreSQL's form (`PostgresSQLConnection.translate`).
@Suite struct SQLTranslationTests {
    @Test(arguments: [
        ("SELECT 1 FROM services WHERE namespace = ? AND name = ?", "SELECT 1 FROM services WHERE namespace = $1 AND name = $2"),
        (
            "WHERE (CAST(?1 AS TEXT) IS NULL OR namespace = ?1) AND (namespace, name) > (?2, ?3) LIMIT ?4",
            "WHERE (CAST($1 AS TEXT) IS NULL OR namespace = $1) AND (namespace, name) > ($2, $3) LIMIT $4"
        ),
        // A bare `?` takes the number after the largest used so far (SQLite's rule).
        ("UPDATE t SET a = ?2, b = ? WHERE c = ?1", "UPDATE t SET a = $2, b = $3 WHERE c = $1"),
        // Nothing changes inside quotes, quoted names or comments.
        ("SELECT '?', \"a?b\" FROM t -- is it?\nWHERE x = ?", "SELECT '?', \"a?b\" FROM t -- is it?\nWHERE x = $1"),
        ("SELECT 'it''s ?' WHERE y = ?", "SELECT 'it''s ?' WHERE y = $1"),
    ])
    func translatesParameters(sql: String, expected: String) {
        #expect(PostgresSQLConnection.translate(sql) == expected)
    }
}
