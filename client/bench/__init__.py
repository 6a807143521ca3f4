"""``farview bench``'s machinery: stream runs (:mod:`.run`), summaries and the plot
(:mod:`.report`), and the in-process floor (:mod:`.floor`, run as a child process)."""
