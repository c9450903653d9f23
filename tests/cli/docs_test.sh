#!/usr/bin/env bash
# Every option a tool's --help lists is in its man page as groff renders it (so an option that a
# macro swallows, as `.OP a | b` swallows b, is missing), and every long option is offered by its
# bash, zsh and fish completions (which offer nothing --help does not list). Covers every built
# tool that has a man page, so it grows with the project. Also: every man page renders without
# groff warnings, its SYNOPSIS has no half-rendered alternatives, --help cuts no path in the
# middle of a word, and aegis(7) names every tool.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v groff >/dev/null || fail "groff is needed to render the man pages (scripts/deps.sh installs groff-base)"

: "${AEGIS_SOURCE_DIR:?AEGIS_SOURCE_DIR must name the source tree}"
man_dir="$AEGIS_SOURCE_DIR/man"
completions="$AEGIS_SOURCE_DIR/completions"

# A page as a reader sees it: rendered by groff, as plain text (no bold or underlining), with
# lines long enough and no hyphenation, so that no option is split; the hyphen and minus
# characters groff may use become "-".
rendered_text() {
    groff -man -Tutf8 -rLL=400n -rHY=0 -P-c -P-b -P-u "$1" 2>/dev/null |
        sed -e 's/\xe2\x80\x90/-/g' -e 's/\xe2\x88\x92/-/g'
}

# The SYNOPSIS section of rendered text.
synopsis_of() {
    sed -n '/^SYNOPSIS/,/^[A-Z]/p' <<<"$1" | sed '$d'
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
    page_text=$(rendered_text "$page")
    [[ -n $page_text ]] || fail "$page renders as nothing"
    bash_text=$(cat "$bash_file")
    zsh_text=$(cat "$zsh_file")
    for option in $help_options; do
        has_long_option "$page_text" "$option" || fail "$tool: --$option is in --help but not in $page"
        has_long_option "$bash_text" "$option" || fail "$tool: --$option is in --help but not in $bash_file"
        has_long_option "$zsh_text" "$option" || fail "$tool: --$option is in --help but not in $zsh_file"
        fish_has_long_option "$fish_file" "$option" || fail "$tool: --$option is in --help but not in $fish_file"
        check_passed
    done

    # Short options too ("-0", "-F"), as --help shows them: "  -0 [ --null ]".
    for short in $(grep -oE -- '^  -[A-Za-z0-9] ' <<<"$out" | tr -d ' '); do
        has_word "$page_text" "$short" || fail "$tool: $short is in --help but not in the rendered $page"
        check_passed
    done

    # Alternatives render whole: "[--json | --prometheus]", never "[--json |]".
    synopsis=$(synopsis_of "$page_text")
    [[ -n $synopsis ]] || fail "$page has no SYNOPSIS"
    if grep -qE '\|[[:space:]]*\]|\[[[:space:]]*\|' <<<"$synopsis"; then
        fail "$page: an alternative is cut in the SYNOPSIS: $synopsis"
    fi
    check_passed

    # --help wraps at spaces: every path it names (a default socket, key or state file) is
    # written whole, as in the tool's source, not cut at the end of a line.
    for path in $(grep -oE -- '[A-Za-z_$~.]*/[A-Za-z0-9_./$~-]*[A-Za-z0-9_]' <<<"$out" | sort -u); do
        grep -rqFw -- "$path" "$AEGIS_SOURCE_DIR/tools/$tool" "$AEGIS_SOURCE_DIR/lib/cli" ||
            fail "$tool --help cuts a word: '$path' is not in its source as a whole"
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
    has_word "$(rendered_text "$man_dir/aegis.7")" "$tool" ||
        fail "aegis(7) does not name $tool"
    check_passed
    checked_tools=$((checked_tools + 1))
done
((checked_tools > 0)) || fail "no built tool with a man page found in $AEGIS_BIN"

# Every man page renders without warnings.
for page in "$man_dir"/*.[1-8]; do
    warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
    [[ -z $warnings ]] || fail "groff warns about $page: $warnings"
    check_passed
done

# What is encrypted is said exactly: per hop, signed end to end; the gateway reads payloads.
# No page may call the channel "end-to-end encrypted" (it is not), and the overview pages say
# what the gateway can read.
for doc in "$AEGIS_SOURCE_DIR/README.md" "$man_dir"/*.1 "$man_dir"/*.7; do
    text=$(if [[ $doc == *.md ]]; then cat "$doc"; else rendered_text "$doc"; fi)
    if grep -Eiq 'end-to-end encrypted|encrypted end to end|end-to-end encryption' <<<"$text" &&
        ! grep -Eiq 'not encrypted end to end|no end-to-end encryption|payloads are not encrypted end' <<<"$text"; then
        fail "$(basename "$doc") claims end-to-end encryption"
    fi
    check_passed
done
expect_contains "$(cat "$AEGIS_SOURCE_DIR/README.md")" "payloads are not encrypted end to end" "README.md"
expect_contains "$(rendered_text "$man_dir/aegis.7" | tr '\n' ' ')" "Payloads are signed end to end, not encrypted end to end" "aegis(7)"
expect_contains "$(cat "$AEGIS_SOURCE_DIR/PROTOCOL.md")" "No end-to-end encryption." "PROTOCOL.md §11"

summary
