import Shared

/// The web client (issue 15): three static files embedded in the binary, served at /app/ when
/// `WEB_APP=on` (the default in development only). Same origin as the API and the sockets, so it
/// needs no CORS; a strict Content-Security-Policy keeps it to its own scripts.
enum WebApp {
    static let contentSecurityPolicy =
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

    @LoopActor
    static func register(on router: APIRouter) {
        router.addImmediate(.GET, "/app") { _ in
            HTTPResponse(status: HTTPStatus(code: 308, reasonPhrase: "Permanent Redirect"), headers: ["Location": "/app/"])
        }
        router.addImmediate(.GET, "/app/") { _ in file(PackageResources.index_html, type: "text/html; charset=utf-8") }
        router.addImmediate(.GET, "/app/app.js") { _ in file(PackageResources.app_js, type: "text/javascript; charset=utf-8") }
        router.addImmediate(.GET, "/app/app.css") { _ in file(PackageResources.app_css, type: "text/css; charset=utf-8") }
    }

    private static func file(_ bytes: [UInt8], type: String) -> HTTPResponse {
        HTTPResponse(status: .ok, headers: [
            "Content-Type": type, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": contentSecurityPolicy, "Referrer-Policy": "no-referrer",
        ], body: bytes)
    }
}
