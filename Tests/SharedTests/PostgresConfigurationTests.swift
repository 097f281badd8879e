import Testing
@testable import Shared

@Suite struct PostgresConfigurationTests {
    @Test func keywordsPutTheURLBetweenDefaultsAndOverrides() {
        let configuration = PostgresConnectionConfiguration(
            url: "postgres://chat@127.0.0.1:5432/chat", applicationName: "gateway",
            parameters: ["sslmode": "disable", "options": "-c search_path=test"])
        let pairs = configuration.connectionKeywords
        #expect(pairs.map(\.keyword) == ["application_name", "dbname", "options", "sslmode"])
        #expect(pairs.map(\.value) == ["gateway", "postgres://chat@127.0.0.1:5432/chat", "-c search_path=test", "disable"])
    }

    @Test func emptyApplicationNameIsNotSent() {
        let configuration = PostgresConnectionConfiguration(url: "host=/tmp dbname=chat", applicationName: "")
        #expect(configuration.connectionKeywords.map(\.keyword) == ["dbname"])
    }

    @Test func defaults() {
        let pool = PostgresPoolConfiguration(url: "postgres://x")
        #expect(pool.size == 4)
        #expect(pool.acquireTimeout == .seconds(2))
        #expect(pool.connection.connectTimeout == .seconds(5))
        #expect(pool.connection.queryTimeout == .seconds(10))
        #expect(pool.connection.applicationName == PostgresDefaults.applicationName)
        #expect(PostgresPoolConfiguration(url: "x", size: 0).size == 1)
    }

    @Test func redactsPasswords() {
        #expect(PostgresConnectionConfiguration.redact("postgres://chat:s3cr@t@db:5432/chat")
            == "postgres://chat:***@db:5432/chat")
        #expect(PostgresConnectionConfiguration.redact("postgresql://chat@db/chat?sslmode=require&password=hunter2")
            == "postgresql://chat@db/chat?sslmode=require&password=***")
        #expect(PostgresConnectionConfiguration.redact("postgres://db/chat") == "postgres://db/chat")
        #expect(PostgresConnectionConfiguration.redact("host=db password=hunter2 dbname=chat")
            == "host=db password=*** dbname=chat")
        #expect(PostgresConnectionConfiguration.redact("host=db password = 'a b\\' c' dbname=chat")
            == "host=db password = *** dbname=chat")
        #expect(PostgresConnectionConfiguration.redact("host=db mypassword=x") == "host=db mypassword=x")
    }
}
