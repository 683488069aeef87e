import Synchronization

/// A response that a handler gives later, from any thread, without holding a worker thread
/// meanwhile: the handler returns `HTTPResponse.deferred(_:)`, the transport suspends the
/// connection (libmicrohttpd's `MHD_suspend_connection`) and frees the worker; `complete(_:)`
/// resumes it (`MHD_resume_connection`) and the response is sent. The first completion wins;
/// later ones are ignored. A handler must make sure every deferred response is completed
/// (typically with a timer as a deadline); at shutdown the transport completes the remaining
/// ones with 503 before stopping, since libmicrohttpd may not stop with suspended connections.
public final class DeferredResponse: Sendable {
    private struct State {
        var response: HTTPResponse?
        var waiter: (@Sendable (HTTPResponse) -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    /// Delivers the response; returns false when one was delivered already.
    @discardableResult
    public func complete(_ response: HTTPResponse) -> Bool {
        let (first, waiter): (Bool, (@Sendable (HTTPResponse) -> Void)?) = state.withLock { state in
            guard state.response == nil else { return (false, nil) }
            state.response = response
            defer { state.waiter = nil }
            return (true, state.waiter)
        }
        waiter?(response)
        return first
    }

    /// Delivers `response`, or, when it is itself deferred, what it delivers once it does (a
    /// layer that answered with a deferred response of its own for a handler's answer).
    public func complete(forwarding response: HTTPResponse) {
        if let inner = response.deferred { inner.whenComplete { self.complete($0) } } else { complete(response) }
    }

    /// Whether a response was delivered.
    public var isCompleted: Bool { state.withLock { $0.response != nil } }

    /// Calls `body` with the response once it is there (now, if it already is). One observer:
    /// the transport, or a layer that wraps the response in a deferred response of its own.
    public func whenComplete(_ body: @escaping @Sendable (HTTPResponse) -> Void) {
        let ready: HTTPResponse? = state.withLock { state in
            if let response = state.response { return response }
            state.waiter = body
            return nil
        }
        if let ready { body(ready) }
    }
}

extension HTTPResponse {
    /// A placeholder the transport recognises: the connection is suspended until `deferred`
    /// completes, then that response is sent.
    public static func deferred(_ deferred: DeferredResponse) -> HTTPResponse {
        var response = HTTPResponse(status: 202)
        response.deferred = deferred
        return response
    }
}
