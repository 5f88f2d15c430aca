public import Hummingbird
import HummingbirdWebSocket
import NIOCore

extension SockJSServer {
    /// Adds every SockJS route under the prefix: HTTP ones to `router`, WebSocket upgrades to
    /// `webSocketRouter` (the router of `.http1WebSocketUpgrade`).
    public func addRoutes(to router: Router<Context>, webSocketRouter: Router<Context>) {
        let group = router.group(RouterPath(prefix)).add(middleware: SockJSFilterMiddleware(filter: filter))
        // Also `/ws/`: the router ignores empty path segments.
        group.get { _, _ in Self.greeting() }
        addInfoRoutes(to: group)
        addIframeRoutes(to: group)
        addXHRPollingRoutes(to: group)
        addXHRStreamingRoutes(to: group)
        addXHRSendRoutes(to: group)
        addEventSourceRoutes(to: group)
        addHTMLFileRoutes(to: group)
        addWebSocketRoutes(to: group, webSocketRouter: webSocketRouter)
        addRawWebSocketRoutes(to: group, webSocketRouter: webSocketRouter)
    }

    static func greeting() -> Response {
        SockJSHTTP.text(.ok, "Welcome to SockJS!\n")
    }
}

/// Refuses the requests the endpoint's filter refuses (e.g. a foreign `Origin`).
struct SockJSFilterMiddleware<Context: SockJSRequestContext>: RouterMiddleware {
    let filter: SockJSServer<Context>.RequestFilter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try filter(request, context, false)
        return try await next(request, context)
    }
}
