"""The wire formats Crossroads can speak to an upstream: the one list of their names, and what the catalog
needs to know about each without knowing its adapter.

A provider's `wire_format` in a catalog file must be one of these. `providers/registry.py` maps each to its
adapter and refuses to start when the two lists disagree, so adding a wire format is one row here and one
adapter there. Imports point from `providers/` to here, never back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

WireFormat = Literal["openai_chat", "anthropic_messages", "gemini", "bedrock", "vertex", "azure_openai"]


@dataclass(frozen=True, slots=True)
class WireFormatSpec:
    #: What this format's SDKs append to a server's root URL to form their base URL: OpenAI-style bases
    #: end in `/v1`, Anthropic's and Google's are the host root.
    root_path: str
    #: The built-in simulator is asked for the catalog's model id (True) or the provider's own upstream id
    #: (False): formats that name the model in the URL path, or check model names, need the upstream id.
    simulator_takes_catalog_ids: bool


SPECS: Final[Mapping[WireFormat, WireFormatSpec]] = {
    "openai_chat": WireFormatSpec(root_path="/v1", simulator_takes_catalog_ids=True),
    "anthropic_messages": WireFormatSpec(root_path="", simulator_takes_catalog_ids=False),
    "gemini": WireFormatSpec(root_path="", simulator_takes_catalog_ids=False),
    # The clouds: Amazon Bedrock's runtime (InvokeModel with Anthropic's Messages body, Converse for the
    # rest), Vertex AI (a publisher's model under a project and region: Gemini's format or Anthropic's), and
    # Azure OpenAI (OpenAI's format, the deployment named in the path). Each names the model in the URL.
    "bedrock": WireFormatSpec(root_path="", simulator_takes_catalog_ids=False),
    "vertex": WireFormatSpec(root_path="/v1/projects/simulator/locations/simulator",
                             simulator_takes_catalog_ids=False),
    "azure_openai": WireFormatSpec(root_path="", simulator_takes_catalog_ids=False),
}
WIRE_FORMATS: Final[tuple[WireFormat, ...]] = get_args(WireFormat)
#: The format of a provider whose catalog table names none, and of the simulator's `/providers` entry.
DEFAULT: Final[WireFormat] = "openai_chat"

__all__ = ["DEFAULT", "SPECS", "WIRE_FORMATS", "WireFormat", "WireFormatSpec"]
