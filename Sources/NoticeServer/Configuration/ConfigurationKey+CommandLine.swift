extension ConfigurationKey {
    /// Settings given on the command line as `--<option> VALUE` or `--<option>=VALUE`, one
    /// for any key (the last wins), as variable names to values. Throws naming every argument
    /// that is not such an option or lacks its value.
    public static func settings(fromArguments arguments: [String]) throws(ConfigurationError) -> [String: String] {
        var settings: [String: String] = [:]
        var problems: [String] = []
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            let option: Substring
            let value: Substring?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                option = argument[..<equals]
                value = argument[argument.index(after: equals)...]
            } else {
                option = argument[...]
                value = nil
            }
            guard let key = ConfigurationKey(option: String(option)) else {
                problems.append(argument.hasPrefix("-") ? "unknown option '\(option)'" : "unexpected argument '\(argument)'")
                continue
            }
            if let value {
                settings[key.name] = String(value)
            } else if let next = remaining.first, !next.hasPrefix("--") {
                settings[key.name] = next
                remaining.removeFirst()
            } else {
                problems.append("missing value for '\(option)'")
            }
        }
        guard problems.isEmpty else { throw ConfigurationError(problems: problems) }
        return settings
    }

    /// One line per key, in ``all``'s order, for `--help`: the option, its meaning, its
    /// variable and its default.
    public static var optionsHelp: [(option: String, help: String)] {
        all.map { key in
            let value = key.defaultValue.map { $0.isEmpty ? "" : ", default \($0)" } ?? ""
            return ("\(key.option) <value>", "\(key.help) [\(key.name)\(value)]")
        }
    }
}
