"""The Lambda functions, one package each. Before any of them imports Powertools, the
Powertools packages that only re-export are registered lazily, so that each function
loads the resolver or event classes it uses and not their siblings (see
`agentfiles.lazy_exports`)."""

from agentfiles.lazy_exports import defer_powertools_reexports

defer_powertools_reexports()
