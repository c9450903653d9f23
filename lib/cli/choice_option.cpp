#include "cli/choice_option.h"

#include <boost/program_options/errors.hpp>
#include <vector>

namespace aegis::cli {

namespace po = boost::program_options;

namespace {

// Program_options fills in the option's name where the message says %canonical_option%.
class ChoiceError final : public po::validation_error {
public:
    explicit ChoiceError(const std::string& message)
        : po::validation_error(po::validation_error::invalid_option_value) {
        m_error_template = message;
    }
};

class ChoiceValue final : public po::typed_value<std::string> {
public:
    ChoiceValue(std::string* target, std::initializer_list<std::string_view> words)
        : po::typed_value<std::string>(target), words_(words.begin(), words.end()) {}

    void xparse(boost::any& value_store, const std::vector<std::string>& tokens) const override {
        po::validators::check_first_occurrence(value_store);
        const auto& word = po::validators::get_single_string(tokens);
        for (const auto& allowed : words_) {
            if (word == allowed) {
                value_store = word;
                return;
            }
        }
        std::string list;
        for (std::size_t i = 0; i < words_.size(); ++i) {
            list += (i == 0 ? "" : i + 1 == words_.size() ? " or " : ", ") + words_[i];
        }
        throw ChoiceError("%canonical_option% takes " + list + ", not '" + word + "'");
    }

private:
    std::vector<std::string> words_;
};

}  // namespace

po::typed_value<std::string>* one_of(std::string* target, std::initializer_list<std::string_view> words) {
    return new ChoiceValue(target, words);  // owned by the options_description
}

}  // namespace aegis::cli
