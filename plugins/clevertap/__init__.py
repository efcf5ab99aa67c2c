"""CleverTap: export events, profiles, event counts and campaign reports."""

from connectord import hookimpl

from .reports import CampaignsSource, CountsSource
from .source import EventsSource, ProfilesSource


@hookimpl
def register_sources(register):
    register(EventsSource)
    register(ProfilesSource)
    register(CountsSource)
    register(CampaignsSource)
