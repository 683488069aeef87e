import Testing

@testable import RegistryCore

@Suite struct KubernetesNamesTests {
    @Test(arguments: [
        ("default", true), ("a", true), ("0abc", true), ("my-ns", true), ("-a", false), ("a-", false), ("A", false),
        ("a_b", false), ("a.b", false), ("", false), (String(repeating: "a", count: 63), true), (String(repeating: "a", count: 64), false),
    ])
    func dns1123Labels(value: String, valid: Bool) {
        #expect(KubernetesNames.dns1123Label(value).isEmpty == valid)
        #expect(KubernetesNames.isDNS1123Label(value) == valid)
    }

    @Test(arguments: [
        ("etcd", true), ("ocs-external-rgw-lb", true), ("1abc", false), ("abc-", false), ("Abc", false), ("", false),
        (String(repeating: "a", count: 64), false),
    ])
    func dns1035Labels(value: String, valid: Bool) {
        #expect(KubernetesNames.dns1035Label(value).isEmpty == valid)
        #expect(KubernetesNames.isDNS1035Label(value) == valid)
    }

    /// The predicates a request's path is checked with agree with the functions that give the
    /// messages, on every short string of the characters that matter.
    @Test func labelPredicatesAgreeWithTheirMessages() {
        let alphabet = ["a", "z", "0", "9", "-", "A", ".", "_", "é", " "]
        var values = [""]
        var previous = [""]
        for _ in 1...3 {
            previous = previous.flatMap { prefix in alphabet.map { prefix + $0 } }
            values += previous
        }
        values += [String(repeating: "a", count: 63), String(repeating: "a", count: 64), "a" + String(repeating: "-", count: 61) + "b"]
        for value in values {
            #expect(KubernetesNames.isDNS1123Label(value) == KubernetesNames.dns1123Label(value).isEmpty, "\(value)")
            #expect(KubernetesNames.isDNS1035Label(value) == KubernetesNames.dns1035Label(value).isEmpty, "\(value)")
        }
    }

    @Test(arguments: [
        ("rtfm.co.ua", true), ("a", true), ("a..b", false), (".a", false), ("a.", false), ("A.com", false), ("a_b.com", false),
        (String(repeating: "a.", count: 126) + "a", true), (String(repeating: "a.", count: 127) + "a", false),
    ])
    func dns1123Subdomains(value: String, valid: Bool) {
        #expect(KubernetesNames.dns1123Subdomain(value).isEmpty == valid)
    }

    @Test(arguments: [
        ("app", true), ("app.kubernetes.io/name", true), ("MyKey", true), ("a_b.c-d", true), ("/a", false), ("a/", false),
        ("a/b/c", false), ("Example.com/a", false), ("-a", false), ("a b", false), (String(repeating: "a", count: 64), false),
        ("example.com/" + String(repeating: "a", count: 63), true), ("", false),
    ])
    func qualifiedNames(value: String, valid: Bool) {
        #expect(KubernetesNames.qualifiedName(value).isEmpty == valid)
    }

    @Test(arguments: [
        ("", true), ("true", true), ("0123", true), ("a.b_c-d", true), ("a/b", false), ("-a", false), ("a ", false),
        (String(repeating: "v", count: 63), true), (String(repeating: "v", count: 64), false),
    ])
    func labelValues(value: String, valid: Bool) {
        #expect(KubernetesNames.labelValue(value).isEmpty == valid)
    }
}

@Suite struct LabelSelectorTests {
    let labels = ["app": "rgw", "tier": "storage", "zone": "a", "weight": "10"]

    @Test(arguments: [
        ("", true), ("app=rgw", true), ("app==rgw", true), ("app!=rgw", false), ("app=etcd", false),
        ("tier in (storage, db)", true), ("tier notin (storage)", false), ("app", true), ("!app", false), ("!missing", true),
        ("missing", false), ("missing!=x", true), ("app=rgw,tier=storage", true), ("app=rgw, tier=db", false),
        ("weight>5", true), ("weight<5", false), ("app in (rgw)", true), (" app = rgw ", true),
        // An empty value is a valid label value, as in kubectl.
        ("app=", false), ("missing=", false),
    ])
    func matches(selector: String, expected: Bool) throws {
        #expect(try LabelSelector(parsing: selector).matches(labels) == expected)
    }

    @Test(arguments: ["=x", "app in rgw", "app in (a", "app=a/b", "app notin ()", "app=x,,b=y", "app ~ x", "weight>x", "a b"])
    func rejectsMalformedSelectors(selector: String) {
        #expect(throws: LabelSelector.ParseError.self) { _ = try LabelSelector(parsing: selector) }
    }
}
