#!/usr/bin/env bash
# Every long option a tool's --help lists is documented in its man page and offered by its bash,
# zsh and fish completions (and the completions offer nothing --help does not list). Covers every
# built tool that has a man page, so it grows with the project. Also: the man pages render without
# groff warnings, and aegis(7) names every tool.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${AEGIS_SOURCE_DIR:?AEGIS_SOURCE_DIR must name the source tree}"
man_dir="$AEGIS_SOURCE_DIR/man"
completions="$AEGIS_SOURCE_DIR/completions"

# Roff source as plain text: "\-" is "-", font and no-hyphenation escapes dropped.
roff_text() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f\[[A-Z]*\]//g' -e 's/\\%//g' -e 's/\\&//g' "$1"
}

# Is WORD in the text whole, not as part of a longer name ("--file" is not in "--file-mode")?
has_word() {
    grep -qE -- "(^|[^A-Za-z0-9-])$2([^A-Za-z0-9-]|\$)" <<<"$1"
}

has_long_option() {
    has_word "$1" "--$2"
}

# fish names a long option "-l NAME" or "--long-option NAME".
fish_has_long_option() {
    grep -qE -- "(^|[[:space:]])(-l|--long-option)[[:space:]]+'?$2'?([[:space:]]|\$)" "$1"
}

long_options_in() {
    grep -oE -- '--[a-z][a-z0-9-]*' | sed 's/^--//' | sort -u
}

checked_tools=0
for tool_path in "$AEGIS_BIN"/aegis-*; do
    [[ -f $tool_path && -x $tool_path ]] || continue
    tool=$(basename "$tool_path")
    page="$man_dir/$tool.1"
    if [[ ! -f $page ]]; then
        echo "note: $tool has no man page yet; not checked"
        continue
    fi
    bash_file="$completions/bash/$tool"
    zsh_file="$completions/zsh/_$tool"
    fish_file="$completions/fish/$tool.fish"
    for file in "$bash_file" "$zsh_file" "$fish_file"; do
        [[ -f $file ]] || fail "$tool has a man page but no completion file $file"
        check_passed
    done
    bash -n "$bash_file" || fail "$bash_file is not valid bash"
    check_passed

    expect_exit 0 "$tool_path" --help
    help_options=$(long_options_in <<<"$out")
    [[ -n $help_options ]] || fail "$tool --help lists no long options"
    page_text=$(roff_text "$page")
    bash_text=$(cat "$bash_file")
    zsh_text=$(cat "$zsh_file")
    for option in $help_options; do
        has_long_option "$page_text" "$option" || fail "$tool: --$option is in --help but not in $page"
        has_long_option "$bash_text" "$option" || fail "$tool: --$option is in --help but not in $bash_file"
        has_long_option "$zsh_text" "$option" || fail "$tool: --$option is in --help but not in $zsh_file"
        fish_has_long_option "$fish_file" "$option" || fail "$tool: --$option is in --help but not in $fish_file"
        check_passed
    done

    # Nothing stale: every option a completion offers is one --help lists.
    offered=$( (
        long_options_in <"$bash_file"
        long_options_in <"$zsh_file"
        grep -oE -- "(-l|--long-option)[[:space:]]+'?[a-z][a-z0-9-]*" "$fish_file" | sed -E "s/.*[[:space:]]'?//"
    ) | sort -u)
    for option in $offered; do
        grep -qx -- "$option" <<<"$help_options" || fail "$tool: a completion offers --$option, which --help does not list"
        check_passed
    done

    [[ -f $man_dir/aegis.7 ]] || fail "man/aegis.7 is missing"
    has_word "$(roff_text "$man_dir/aegis.7")" "$tool" ||
        fail "aegis(7) does not name $tool"
    check_passed
    checked_tools=$((checked_tools + 1))
done
((checked_tools > 0)) || fail "no built tool with a man page found in $AEGIS_BIN"

# Every man page renders without warnings.
if command -v groff >/dev/null; then
    for page in "$man_dir"/*.[1-8]; do
        warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
        [[ -z $warnings ]] || fail "groff warns about $page: $warnings"
        check_passed
    done
else
    echo "note: groff is not installed; man pages not rendered"
fi

summary
