"""The package's exception hierarchy.

Every error a user can meet names the thing, the cause and the fix. Catch
:class:`EdgeClassifierError` to handle them all; catch a child to handle one cause.
"""

from __future__ import annotations


class EdgeClassifierError(Exception):
    """Base of every error raised by edge_classifier and its converters.

    Args:
        thing: what failed (a file path, a device, a camera), shown first.
        cause: why it failed, in the user's terms.
        fix: what to do about it; optional when there is nothing to do.
    """

    def __init__(self, thing: str, cause: str, fix: str = "") -> None:
        self.thing = thing
        self.cause = cause
        self.fix = fix
        message = f"{thing}: {cause}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message: one line, control characters escaped, cut at ``limit`` characters.

    A hostile value (a 10 MB string, a newline-laden name) must not become a 10 MB or multi-line error message.
    """
    text = f"{value:g}" if isinstance(value, float) else repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


# --- models and their contract -------------------------------------------------------
class ModelError(EdgeClassifierError):
    """A model file is missing, unreadable, corrupt, or not an image classifier."""


class LabelsError(ModelError):
    """A labels file is missing, unreadable, or does not match the model's outputs."""


class SpecError(ModelError):
    """A ModelSpec field is invalid or contradicts the model."""


# --- images -------------------------------------------------------------------------
class ImageError(EdgeClassifierError):
    """An image is missing, unreadable, empty, or of an unsupported kind."""


# --- back-ends ----------------------------------------------------------------------
class BackendUnavailableError(EdgeClassifierError):
    """No usable TFLite runtime, or the requested one is not installed."""


class InferenceError(EdgeClassifierError):
    """The interpreter failed while running a model."""


# --- Edge TPU -----------------------------------------------------------------------
class EdgeTpuError(EdgeClassifierError):
    """The Edge TPU could not be used; each child names one cause."""


class EdgeTpuLibraryMissingError(EdgeTpuError):
    """libedgetpu is not installed or cannot be loaded."""


class EdgeTpuNotFoundError(EdgeTpuError):
    """libedgetpu is present but no Edge TPU device is attached."""


class EdgeTpuPermissionError(EdgeTpuError):
    """An Edge TPU is present but this user may not open it (udev rule, plugdev group)."""


class EdgeTpuBusyError(EdgeTpuError):
    """The Edge TPU is held by another process."""


class EdgeTpuDriverError(EdgeTpuError):
    """A PCIe Edge TPU is present but its gasket/apex driver is not loaded."""


class EdgeTpuVersionError(EdgeTpuError):
    """libedgetpu and the TFLite runtime, or the model and libedgetpu, do not fit together."""


class NotCompiledForEdgeTpuError(EdgeTpuError):
    """A model without an edgetpu-custom-op was asked to run on the Edge TPU."""


class CpuTwinMissingError(EdgeTpuError):
    """An _edgetpu model must fall back to the CPU, but its CPU twin file is missing."""


class AcceleratorLostError(EdgeTpuError):
    """The accelerator (or the worker process that drove it) died while running."""


# --- Raspberry Pi's own accelerators: the AI HAT+ (Hailo) and the AI Camera (IMX500) ---------
class AcceleratorError(EdgeClassifierError):
    """A Hailo or IMX500 accelerator could not be used; each child names one cause (as EdgeTpuError's do)."""


class WrongAcceleratorError(AcceleratorError):
    """The model is built for another accelerator than the one asked for (a .hef on a Coral, a .tflite on a Hailo)."""


class SystemPackageHiddenError(AcceleratorError):
    """A vendor binding installed by apt (hailo_platform, picamera2) is hidden by a venv made without system packages."""


class HailoError(AcceleratorError):
    """The Hailo accelerator (AI HAT+, AI Kit) could not be used; each child names one cause."""


class HailoRuntimeMissingError(HailoError):
    """HailoRT's Python binding (``hailo_platform``, apt ``python3-hailort``) is not installed or does not import."""


class HailoNotFoundError(HailoError):
    """No Hailo device is attached (no PCIe 1e60 function, no /dev/hailoN)."""


class HailoDriverError(HailoError):
    """A Hailo device is on PCIe but its driver (hailo_pci / hailo1x_pci) is not loaded or made no /dev/hailoN."""


class HailoPermissionError(HailoError):
    """/dev/hailoN exists but this user may not open it (the udev rule is missing)."""


class HailoBusyError(HailoError):
    """The Hailo device is held by another process."""


class HailoVersionError(HailoError):
    """The HailoRT library and the kernel driver are different versions (HAILO_INVALID_DRIVER_VERSION)."""


class HailoPackageConflictError(HailoError):
    """Both Hailo package families (hailo-all for Hailo-8/8L, hailo-h10-all for Hailo-10H) are installed."""


class HailoModelMismatchError(HailoError):
    """The .hef was compiled for another Hailo chip than the one attached (HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE)."""


class IMX500Error(AcceleratorError):
    """The AI Camera's IMX500 sensor could not run the network; each child names one cause."""


class IMX500NotFoundError(IMX500Error):
    """No IMX500 camera is attached (no v4l-subdev driven by the imx500 module)."""


class IMX500PermissionError(IMX500Error):
    """The IMX500's /dev/v4l-subdevN exists but this user may not open it (not in the video group)."""


class IMX500FirmwareMissingError(IMX500Error):
    """The IMX500 firmware (/lib/firmware/imx500_loader.fpk, imx500_firmware.fpk) is not installed."""


class IMX500SupportMissingError(IMX500Error):
    """picamera2 has no IMX500 support (``picamera2.devices.imx500``): too old, or installed from pip."""


class IMX500NetworkError(IMX500Error):
    """The .rpk could not be loaded onto the sensor, or the sensor delivered no output tensor."""


# --- sources, sinks, the loop ---------------------------------------------------------
class SourceError(EdgeClassifierError):
    """A frame source (camera, stream, video, images) cannot be opened or read."""


class CameraNotFoundError(SourceError):
    """No camera at the requested index or path."""


class CameraBusyError(SourceError):
    """The camera is held by another process."""


class CameraTimeoutError(SourceError):
    """A camera or stream stopped delivering frames."""


class SinkError(EdgeClassifierError):
    """A result sink (file, window, recording, broker, webhook) failed."""


class DatasetError(EdgeClassifierError):
    """A labelled image folder or CSV cannot be used: empty, an unknown or ambiguous label, a malformed row."""


class ConfigError(EdgeClassifierError):
    """A configuration file or option is invalid."""


# --- host-side converters -------------------------------------------------------------
class ConversionError(EdgeClassifierError):
    """A model could not be loaded, calibrated, quantized, or validated."""


class CalibrationError(ConversionError):
    """The calibration or validation images are missing or unreadable."""


class WeightsError(ConversionError):
    """A weights file is missing, not a state_dict, or holds forbidden pickle globals."""


class TrainingError(ConversionError):
    """Training photos, options or the output folder cannot make a classifier (``edge-convert train``)."""


class CompilerError(EdgeClassifierError):
    """edgetpu_compiler is missing, failed, timed out, or wrote an unusable file."""


class IMX500ToolchainError(ConversionError):
    """Sony's IMX500 toolchain (MCT, imxconv) could not be installed or run; each child names one cause."""


class ToolchainInstallError(IMX500ToolchainError):
    """The toolchain's own virtual environment could not be created or its pinned packages installed."""


class JavaMissingError(IMX500ToolchainError):
    """imxconv's back end (sdspconv) needs a Java runtime (17 or newer), and none was found."""


class ImxconvError(IMX500ToolchainError):
    """The quantization or imxconv step failed (the model does not fit the sensor, an unsupported layer, ...)."""


class FallbackWarning(RuntimeWarning):
    """The requested accelerator is not usable and the CPU is used instead (``device="auto"``)."""


__all__ = [name for name, obj in dict(globals()).items() if isinstance(obj, type) and issubclass(obj, Warning | Exception)]
