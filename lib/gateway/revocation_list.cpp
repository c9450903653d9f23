#include "gateway/revocation_list.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "gateway/line_file.h"
#include "identity/keyfile.h"

namespace aegis::gateway {
namespace {

// One entry into `list`, or what is wrong with it.
std::optional<std::string> apply_line(std::string_view line, RevocationList& list) {
    if (line.starts_with("serial") && (line.size() == 6 || kBlanks.find(line[6]) != std::string_view::npos)) {
        const auto number = trim_blanks(line.substr(6));
        std::uint64_t serial = 0;
        const auto* end = number.data() + number.size();
        const auto [ptr, ec] = std::from_chars(number.data(), end, serial);
        if (number.empty() || ec != std::errc() || ptr != end)
            return fmt::format("'serial' needs one whole number from 0 to 18446744073709551615, not '{}'", number);
        list.add_serial(serial);
        return std::nullopt;
    }
    auto key = identity::parse_public_key_line(line);
    if (!key) return fmt::format("{} (expected 'aegis-ed25519 <base64>' or 'serial <N>')", key.error().message);
    list.add_key(key->key);
    return std::nullopt;
}

}  // namespace

std::optional<std::string> RevocationList::revokes(const crypto::PublicKey& key,
                                                   const std::optional<identity::Certificate>& certificate) const {
    if (keys_.count(key) != 0) return fmt::format("key {} is in the revocation list", crypto::fingerprint(key));
    if (certificate && serials_.count(certificate->serial) != 0)
        return fmt::format("certificate serial {} is in the revocation list", certificate->serial);
    return std::nullopt;
}

Result<RevocationList> parse_revocation_list(std::string_view text, std::string_view file_name) {
    RevocationList list;
    std::vector<std::string> problems;
    std::size_t number = 0;
    while (!text.empty()) {
        const auto end = text.find('\n');
        const auto line = trim_blanks(text.substr(0, end));
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        ++number;
        if (line.empty() || line.front() == '#') continue;
        if (auto problem = apply_line(line, list))
            problems.push_back(fmt::format("{}:{}: {}", file_name, number, *problem));
    }
    if (!problems.empty()) return bad_lines_error("revocation list", file_name, problems);
    return list;
}

Result<RevocationList> load_revocation_list(const std::filesystem::path& file) {
    auto text = read_line_file(file, "revocation list");
    if (!text) return text.take_error();
    auto list = parse_revocation_list(*text, file.string());
    if (list) list->text = std::move(text.value());
    return list;
}

}  // namespace aegis::gateway
