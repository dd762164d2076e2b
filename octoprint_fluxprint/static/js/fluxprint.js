/*
 * FluxPrint settings panel view model.
 *
 * Binds to settings.plugins.fluxprint; validates the intervals inline and never lets
 * an invalid one be saved (the server clamps as well).
 */
$(function () {
    var PATH = "/plugin/fluxprint/socket.io/";
    var NAMESPACE = "/ws/printing";
    var MAX_INTERVAL = 3600;
    var INTERVALS = ["status_interval", "temperature_interval", "progress_interval"];

    function validInterval(value) {
        if (value === "" || value === null || value === undefined) {
            return false;
        }
        var number = Number(value);
        return isFinite(number) && number >= 0 && number <= MAX_INTERVAL;
    }

    function FluxPrintSettingsViewModel(parameters) {
        var self = this;
        self.settingsViewModel = parameters[0];
        self.settings = undefined;
        self.saved = {};
        self.copied = ko.observable(false);
        self.hostnamePlaceholder = ko.observable(gettext("host name"));

        self.errors = {};
        _.each(INTERVALS, function (key) {
            self.errors[key] = ko.observable("");
        });

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
                "});",
                "",
                'socket.on("connect_error", (err) => console.error("FluxPrint:", err.message));',
                'socket.on("printer:status", (status) => console.log(status.state.text));',
                'socket.on("printer:temperature", (temps) => console.log(temps));',
                'socket.on("printer:progress", (progress) => console.log(progress.completion));',
                'socket.on("printer:job_complete", (job) => console.log("done", job.file.name));',
                'socket.on("printer:job_failed", (job) => console.log("failed", job.reason));'
            ].join("\n");
        });

        self._validate = function (key, value) {
            if (validInterval(value)) {
                self.errors[key]("");
                return true;
            }
            self.errors[key](
                _.sprintf(gettext("Enter a number of seconds from 0 to %(max)s."), {
                    max: MAX_INTERVAL
                })
            );
            return false;
        };

        self.onBeforeBinding = function () {
            self.settings = self.settingsViewModel.settings.plugins.fluxprint;
            _.each(INTERVALS, function (key) {
                self.settings[key].subscribe(function (value) {
                    self._validate(key, value);
                });
            });
        };

        self.onSettingsShown = function () {
            _.each(INTERVALS, function (key) {
                self.saved[key] = self.settings[key]();
                self._validate(key, self.settings[key]());
            });
        };

        self.onSettingsBeforeSave = function () {
            // an invalid interval is never sent: keep the last saved value instead
            _.each(INTERVALS, function (key) {
                var value = self.settings[key]();
                if (!validInterval(value)) {
                    self.settings[key](self.saved[key]);
                } else {
                    self.settings[key](Number(value));
                    self.saved[key] = Number(value);
                }
            });
        };

        self.copySnippet = function () {
            var text = self.nodeSnippet();
            var done = function () {
                self.copied(true);
                setTimeout(function () {
                    self.copied(false);
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
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: FluxPrintSettingsViewModel,
        dependencies: ["settingsViewModel"],
        elements: ["#settings_plugin_fluxprint"]
    });
});
