"""FluxPrint: live printer state from OctoPrint over its own Socket.IO namespace.

This module is the plugin's metadata only, as OctoPrint's bundled plugins have it:
literal ``__plugin_*`` values OctoPrint can read without importing anything, and a
``__plugin_load__`` that imports the implementation lazily. Nothing else in the
package imports OctoPrint except ``plugin``: ``core``, ``server``, ``store`` and
``client`` work without it (docs/architecture.md).
"""

__version__ = "0.1.0"

__plugin_name__ = "FluxPrint"
__plugin_version__ = "0.1.0"
__plugin_description__ = (
    "Pushes live printer state, temperatures, progress and job events to FluxStudio "
    "and other Socket.IO clients, on OctoPrint's own port."
)
__plugin_author__ = "FluxPrint developers"
__plugin_url__ = "https://github.com/fluxprint/OctoPrint-FluxPrint"
__plugin_license__ = "AGPL-3.0-or-later"
__plugin_pythoncompat__ = ">=3.9,<4"


def __plugin_load__():
    import logging

    from octoprint.util.version import get_octoprint_version_string

    from .plugin.compat import check

    load, message = check(get_octoprint_version_string())
    if message:
        logger = logging.getLogger("octoprint.plugins.fluxprint")
        (logger.warning if load else logger.error)(message)
    if not load:
        return

    from .plugin import FluxPrintPlugin

    global __plugin_implementation__, __plugin_hooks__
    plugin = __plugin_implementation__ = FluxPrintPlugin()
    __plugin_hooks__ = {
        "octoprint.access.permissions": plugin.get_additional_permissions,
        "octoprint.server.http.routes": plugin.get_routes,
        "octoprint.server.http.bodysize": plugin.get_body_sizes,
        "octoprint.plugin.softwareupdate.check_config": plugin.get_update_information,
    }
