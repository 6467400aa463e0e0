"""The capacity and cost model: what 1,000 conversations cost on AWS and where the
system meets its first limits as users grow, measured from a real conversation.

`cost_model` runs the conversation and prices it, `scale_model` grows it into
populations, `units` is how AWS meters a request, `pricing` what a unit costs,
`meter` the recorder of the data layer's calls, and `doc` the generator of
docs/capacity.md. Its tests (`tests/`) run with `make capacity-doc`, not `make test`.
"""
