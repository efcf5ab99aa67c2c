"""mParticle: the ``mparticle.http`` push source and the ``mparticle.to_pushwoosh`` mapping."""

from connectord import hookimpl

from .mapping import MparticleToPushwoosh
from .source import MparticleSource


@hookimpl
def register_sources(register):
    register(MparticleSource)


@hookimpl
def register_mappings(register):
    register(MparticleToPushwoosh)
