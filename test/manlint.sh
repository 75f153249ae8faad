#!/bin/sh
# manlint.sh PAGE: what mandoc -T lint does not catch in an mdoc page:
# words after a flag (.Fl) that would render as flags themselves, as
# ".Pq Fl t , or an error ," renders "(-t, -or -an -error)".  Exit 1 on a
# finding, naming the line.
awk '
/^\.[A-Z][a-z]* / || /^\.Fl / {
	state = 0
	for (i = 1; i <= NF; i++) {
		t = $i
		if (i == 1)
			sub(/^\./, "", t)
		if (t == "Fl") { state = 1; continue }
		if (t ~ /^[A-Z][a-z]?[a-z]?$/) { state = 0; continue }
		if (state == 1) { state = 2; continue }
		if (state == 2 && t ~ /^[a-z][a-z][a-z]*$/) {
			printf "%s:%d: \"%s\" after a flag renders as a flag: %s\n",
			    FILENAME, NR, t, $0
			bad = 1
		}
	}
}
END { exit bad }' "$@"
