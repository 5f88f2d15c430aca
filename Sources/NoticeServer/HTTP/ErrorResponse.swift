import Foundation
import HTTPTypes
import Hummingbird

/// The JSON error shape of every HTTP error (SPEC §7): `{"error": "...", "message": "..."}`.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let error: String
    let message: String
    /// Extra response headers (e.g. `WWW-Authenticate` on a 401).
    var headers: HTTPFields = [:]

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = jsonResponse(status: status, ["error": error, "message": message])
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// A JSON response from string values (keys sorted, so output is stable).
func jsonResponse(status: HTTPResponse.Status, _ object: [String: String]) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
        body: .init(byteBuffer: .init(bytes: data))
    )
}
