/// JSON merge patch (RFC 7386): objects merge member by member, `null` removes a member,
/// anything else (arrays included) replaces the target value whole.
public enum MergePatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        var result: JSONObject
        if case .object(let targetObject) = target {
            result = targetObject
        } else {
            result = JSONObject()
        }
        for member in patchObject {
            if member.value == .null {
                result[member.key] = nil
            } else {
                result[member.key] = apply(member.value, to: result[member.key] ?? .null)
            }
        }
        return .object(result)
    }
}
