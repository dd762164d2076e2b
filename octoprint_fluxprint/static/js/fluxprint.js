/*
 * FluxPrint settings panel view model.
 *
 * Binds to settings.plugins.fluxprint; validates the intervals (and the access
 * settings) inline and never lets an invalid value be saved (the server clamps as
 * well). While the FluxPrint tab is visible it holds a lease on the server's live
 * view, which then pushes the connected clients and health figures as plugin
 * messages once a second.
 */
$(function () {
    var PLUGIN = "fluxprint";
    var PATH = "/plugin/fluxprint/socket.io/";
    var NAMESPACE = "/ws/printing";
    var MAX_INTERVAL = 3600;
    var MAX_CONNECTIONS = 10000;
    var INTERVALS = [
        "status_interval",
        "temperature_interval",
        "progress_interval",
        "status_keyframe",
    ];
    var LIMITS = ["max_connections", "max_connections_per_user"];
    var PANEL_ID = "settings_plugin_fluxprint";
    var VISIBILITY_POLL_MS = 2000;
    var LEASE_RENEW_MS = 10000;
    var ORIGIN_RE = /^https?:\/\/[^\/\s?#]+$/i;

    function blank(value) {
        return value === "" || value === null || value === undefined;
    }

    function validInterval(value) {
        if (blank(value)) {
            return false;
        }
        var number = Number(value);
        return isFinite(number) && number >= 0 && number <= MAX_INTERVAL;
    }

    function validLimit(value) {
        if (blank(value)) {
            return false;
        }
        var number = Number(value);
        return (
            isFinite(number) &&
            Math.floor(number) === number &&
            number >= 1 &&
            number <= MAX_CONNECTIONS
        );
    }

    function parseOrigins(text) {
        return _.filter(
            _.map((text || "").split(/[\s,]+/), function (line) {
                return line.trim().replace(/\/+$/, "");
            }),
            function (line) {
                return line.length > 0;
            }
        );
    }

    function randomToken() {
        var out = "";
        var chars = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (var i = 0; i < 24; i++) {
            out += chars.charAt(Math.floor(Math.random() * chars.length));
        }
        return out;
    }

    function formatSince(since) {
        if (!since) {
            return "";
        }
        return formatTimeAgo(since);
    }

    function FluxPrintSettingsViewModel(parameters) {
        var self = this;
        self.settingsViewModel = parameters[0];
        self.loginState = parameters[1];
        self.access = parameters[2];
        self.settings = undefined;
        self.saved = {};
        self.copied = ko.observable("");
        self.hostnamePlaceholder = ko.observable(gettext("host name"));

        self.errors = {};
        _.each(INTERVALS.concat(LIMITS), function (key) {
            self.errors[key] = ko.observable("");
        });

        // ~~ connect FluxStudio

        self.url = ko.pureComputed(function () {
            return window.location.protocol + "//" + window.location.host;
        });

        self.nodeSnippet = ko.pureComputed(function () {
            return [
                'import { io } from "socket.io-client";',
                "",
                'const socket = io("' + self.url() + NAMESPACE + '", {',
                '  path: "' + PATH + '",',
                "  auth: { apikey: process.env.OCTOPRINT_API_KEY },",
                '  transports: ["websocket", "polling"],',
                "  reconnection: true,",
                "  reconnectionDelay: 1000,",
                "  reconnectionDelayMax: 30000,",
                "  randomizationFactor: 0.5,",
                "});",
                "",
                'socket.on("connect", () => console.log("FluxPrint: connected", socket.id));',
                'socket.on("connect_error", (err) => console.error("FluxPrint:", err.message));',
                'socket.on("printer:status", (status) => console.log(status.state.text));',
                'socket.on("printer:temperature", (temps) => console.log(temps));',
                'socket.on("printer:progress", (progress) => console.log(progress.completion));',
                'socket.on("printer:job_complete", (job) => console.log("done", job.file.name));',
                'socket.on("printer:job_failed", (job) => console.log("failed", job.reason));'
            ].join("\n");
        });

        self.pythonSnippet = ko.pureComputed(function () {
            return [
                "import os",
                "",
                "import socketio",
                "",
                "sio = socketio.Client(",
                "    reconnection=True,",
                "    reconnection_delay=1,",
                "    reconnection_delay_max=30,",
                "    randomization_factor=0.5,",
                ")",
                "",
                "",
                '@sio.on("printer:status", namespace="' + NAMESPACE + '")',
                "def on_status(status):",
                '    print(status["state"]["text"])',
                "",
                "",
                '@sio.on("printer:temperature", namespace="' + NAMESPACE + '")',
                "def on_temperature(temps):",
                "    print(temps)",
                "",
                "",
                "sio.connect(",
                '    "' + self.url() + '",',
                '    socketio_path="' + PATH + '",',
                '    namespaces=["' + NAMESPACE + '"],',
                '    auth={"apikey": os.environ["OCTOPRINT_API_KEY"]},',
                '    transports=["websocket", "polling"],',
                ")",
                "sio.wait()"
            ].join("\n");
        });

        self._copy = function (which, text) {
            var done = function () {
                self.copied(which);
                setTimeout(function () {
                    if (self.copied() === which) {
                        self.copied("");
                    }
                }, 2000);
            };
            if (navigator.clipboard && window.isSecureContext) {
                navigator.clipboard.writeText(text).then(done, function () {
                    copyToClipboard(text);
                    done();
                });
            } else {
                copyToClipboard(text);
                done();
            }
        };

        self.copyNode = function () {
            self._copy("node", self.nodeSnippet());
        };

        self.copyPython = function () {
            self._copy("python", self.pythonSnippet());
        };

        self.showAppKeys = function () {
            // OctoPrint's Application Keys settings (the bundled appkeys plugin)
            self.settingsViewModel.selectTab("settings_plugin_appkeys");
            return false;
        };

        // ~~ validation

        self._message = function (key) {
            if (_.contains(LIMITS, key)) {
                return _.sprintf(gettext("Enter a whole number from 1 to %(max)s."), {
                    max: MAX_CONNECTIONS
                });
            }
            return _.sprintf(gettext("Enter a number of seconds from 0 to %(max)s."), {
                max: MAX_INTERVAL
            });
        };

        self._valid = function (key, value) {
            return _.contains(LIMITS, key) ? validLimit(value) : validInterval(value);
        };

        self._validate = function (key, value) {
            if (self._valid(key, value)) {
                self.errors[key]("");
                return true;
            }
            self.errors[key](self._message(key));
            return false;
        };

        // ~~ access (settings added by the security work; hidden until they exist)

        self.accessAvailable = ko.observable(false);
        self.originsText = ko.observable("");
        self.originsError = ko.observable("");
        self.originsText.subscribe(function (text) {
            self._validateOrigins(text);
        });

        self._validateOrigins = function (text) {
            var bad = _.reject(parseOrigins(text), function (origin) {
                return origin === "*" || ORIGIN_RE.test(origin);
            });
            if (bad.length) {
                self.originsError(
                    _.sprintf(
                        gettext(
                            "Not an origin: %(origin)s. Write scheme and host, such as https://studio.example.com."
                        ),
                        {origin: bad[0]}
                    )
                );
                return false;
            }
            self.originsError("");
            return true;
        };

        self._keys = function () {
            return self.accessAvailable() ? INTERVALS.concat(LIMITS) : INTERVALS;
        };

        self.onBeforeBinding = function () {
            self.settings = self.settingsViewModel.settings.plugins.fluxprint;
            self.accessAvailable(
                ko.isObservable(self.settings.allowed_origins) &&
                    ko.isObservable(self.settings.max_connections) &&
                    ko.isObservable(self.settings.max_connections_per_user)
            );
            _.each(self._keys(), function (key) {
                self.settings[key].subscribe(function (value) {
                    self._validate(key, value);
                });
            });
        };

        self.onSettingsShown = function () {
            _.each(self._keys(), function (key) {
                self.saved[key] = self.settings[key]();
                self._validate(key, self.settings[key]());
            });
            if (self.accessAvailable()) {
                self.saved.allowed_origins = (self.settings.allowed_origins() || []).slice();
                self.originsText(self.saved.allowed_origins.join("\n"));
            }
            self._startWatching();
        };

        self.onSettingsHidden = function () {
            self._stopWatching();
        };

        self.onSettingsBeforeSave = function () {
            // an invalid value is never sent: keep the last saved value instead
            _.each(self._keys(), function (key) {
                var value = self.settings[key]();
                if (!self._valid(key, value)) {
                    self.settings[key](self.saved[key]);
                } else {
                    self.settings[key](Number(value));
                    self.saved[key] = Number(value);
                }
            });
            if (self.accessAvailable()) {
                if (self._validateOrigins(self.originsText())) {
                    self.saved.allowed_origins = parseOrigins(self.originsText());
                }
                self.settings.allowed_origins(self.saved.allowed_origins.slice());
            }
        };

        // ~~ live view: lease while the tab is visible, render what the server pushes

        self.clients = ko.observableArray([]);
        self.health = ko.observable(undefined);
        self.printerConnected = ko.pureComputed(function () {
            var health = self.health();
            return !!(health && health.printer_connected);
        });
        self.printerStateText = ko.pureComputed(function () {
            var health = self.health();
            var state = health && health.connection;
            if (state === "connecting") {
                return gettext("connecting");
            }
            if (state === "error") {
                return gettext("error");
            }
            return gettext("not connected");
        });
        self.temperatureAgeText = ko.pureComputed(function () {
            var health = self.health();
            if (!health || health.last_temperature_age === null) {
                return gettext("No temperature received yet");
            }
            return _.sprintf(gettext("Last temperature received %(age)s s ago"), {
                age: Math.round(health.last_temperature_age)
            });
        });
        self.eventsPerSecondText = ko.pureComputed(function () {
            var health = self.health();
            if (!health) {
                return "";
            }
            return _.sprintf(gettext("%(rate)s events per second"), {
                rate: health.events_per_second.toFixed(1)
            });
        });

        // the print farm's Redis link (off, connecting, up, down), pushed with health
        self.redis = ko.observable(undefined);
        self.redisStateText = ko.pureComputed(function () {
            var redis = self.redis();
            return redis ? redis.state : gettext("off");
        });
        self.redisStateCss = ko.pureComputed(function () {
            var state = self.redis() && self.redis().state;
            return {
                "label-success": state === "up",
                "label-important": state === "down",
                "label-warning": state === "connecting"
            };
        });
        self.redisText = ko.pureComputed(function () {
            var redis = self.redis();
            if (!redis || redis.state === "off") {
                return "";
            }
            return _.sprintf(
                gettext("queue %(queue)s, published %(published)s, back-filled %(backfilled)s, dropped %(dropped)s"),
                {
                    queue: redis.queue,
                    published: redis.published,
                    backfilled: redis.backfilled,
                    dropped: redis.dropped
                }
            );
        });
        self.redisError = ko.pureComputed(function () {
            var redis = self.redis();
            return redis && redis.state !== "up" && redis.last_error ? redis.last_error : "";
        });

        self._token = randomToken();
        self._open = false;
        self._poll = undefined;
        self._lastLease = 0;

        self._canWatch = function () {
            var permissions = self.access.permissions;
            var receive = permissions.PLUGIN_FLUXPRINT_RECEIVE || permissions.STATUS;
            return (
                self.loginState.hasPermission(permissions.SETTINGS) &&
                self.loginState.hasPermission(receive)
            );
        };

        self._panelVisible = function () {
            return (
                OctoPrint.coreui.settingsOpen === true &&
                $("#" + PANEL_ID).is(":visible")
            );
        };

        self._sendLease = function (open) {
            self._lastLease = open ? Date.now() : 0;
            return OctoPrint.simpleApiCommand(PLUGIN, "panel", {
                token: self._token,
                open: open
            }).fail(function () {
                self._lastLease = 0;
            });
        };

        self._checkVisibility = function () {
            var visible = self._canWatch() && self._panelVisible();
            if (visible && (!self._open || Date.now() - self._lastLease > LEASE_RENEW_MS)) {
                self._open = true;
                self._sendLease(true);
            } else if (!visible && self._open) {
                self._open = false;
                self._sendLease(false);
            }
        };

        self._startWatching = function () {
            if (self._poll === undefined) {
                self._poll = setInterval(self._checkVisibility, VISIBILITY_POLL_MS);
            }
            setTimeout(self._checkVisibility, 500);
        };

        self._stopWatching = function () {
            if (self._poll !== undefined) {
                clearInterval(self._poll);
                self._poll = undefined;
            }
            self._checkVisibility();
        };

        self.onAllBound = function () {
            $('#settingsTabs a[data-toggle="tab"]').on("shown", function () {
                self._checkVisibility();
            });
        };

        self._row = function (row) {
            var intervals = row.intervals || {};
            var parts = _.map(row.channels || [], function (channel) {
                var interval = intervals[channel];
                return interval === undefined || interval === null
                    ? channel
                    : channel + " " + interval + " s";
            });
            var since = row.since ? Math.floor(row.since) : 0;
            return {
                id: row.id,
                user: row.user,
                remote: row.remote,
                transport: row.transport,
                transportText: row.transport || "?",
                since: since,
                sinceText: formatSince(since),
                sinceTitle: since ? formatDate(since) : "",
                subscriptionsText: parts.length ? parts.join(", ") : gettext("none"),
                messages: row.messages
            };
        };

        self.onDataUpdaterPluginMessage = function (plugin, data) {
            if (plugin !== PLUGIN || !data || data.type !== "panel") {
                return;
            }
            self.clients(_.map(data.clients || [], self._row));
            self.health(data.health || undefined);
            self.redis(data.redis || undefined);
        };
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: FluxPrintSettingsViewModel,
        dependencies: ["settingsViewModel", "loginStateViewModel", "accessViewModel"],
        elements: ["#settings_plugin_fluxprint"]
    });
});
