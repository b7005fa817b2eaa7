/*
 * OpenDPS's driver for the unmodified Azure IoT C SDK (test/c-sdk.test.ts runs it):
 *   c_device TRANSPORT DPS_HOST ID_SCOPE REGISTRATION_ID KEY CA_FILE [TIMEOUT_S] [--hub]
 * TRANSPORT is mqtt, mqttws, amqp, amqpws or http. KEY is the device's own key (a group key is
 * derived by the caller, as a C SDK app does). It provisions, then with --hub connects to the
 * assigned hub over MQTT, sends one telemetry message and reads its twin. Each step prints one
 * JSON line on stdout; the SDK's own log goes to stderr.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c_logging/logger.h"
#include "iothub.h"
#include "iothub_client_options.h"
#include "iothub_device_client_ll.h"
#include "iothub_message.h"
#include "iothubtransportmqtt.h"
#include "azure_c_shared_utility/shared_util_options.h"
#include "azure_c_shared_utility/threadapi.h"
#include "azure_prov_client/prov_device_ll_client.h"
#include "azure_prov_client/prov_security_factory.h"
#include "azure_prov_client/prov_transport_amqp_client.h"
#include "azure_prov_client/prov_transport_amqp_ws_client.h"
#include "azure_prov_client/prov_transport_http_client.h"
#include "azure_prov_client/prov_transport_mqtt_client.h"
#include "azure_prov_client/prov_transport_mqtt_ws_client.h"

MU_DEFINE_ENUM_STRINGS_WITHOUT_INVALID(PROV_DEVICE_RESULT, PROV_DEVICE_RESULT_VALUE);
MU_DEFINE_ENUM_STRINGS_WITHOUT_INVALID(PROV_DEVICE_REG_STATUS, PROV_DEVICE_REG_STATUS_VALUES);

/* Prints s as a JSON string (quotes included), or null. */
static void print_json_string(const char* s)
{
    if (s == NULL)
    {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char* p = (const unsigned char*)s; *p != '\0'; p++)
    {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static char* read_file(const char* path)
{
    FILE* file = fopen(path, "rb");
    if (file == NULL) return NULL;
    char* text = NULL;
    if (fseek(file, 0, SEEK_END) == 0)
    {
        long size = ftell(file);
        if (size >= 0 && fseek(file, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1)) != NULL)
        {
            size_t got = fread(text, 1, (size_t)size, file);
            text[got] = '\0';
        }
    }
    fclose(file);
    return text;
}

typedef struct
{
    int done; /* 0 pending, 1 assigned, 2 failed */
    PROV_DEVICE_RESULT result;
    char* hub;
    char* device_id;
    char statuses[256]; /* every registration status the SDK reported, comma separated */
} PROVISIONING;

static void on_register(PROV_DEVICE_RESULT result, const char* hub, const char* device_id, void* context)
{
    PROVISIONING* state = context;
    state->result = result;
    if (result == PROV_DEVICE_RESULT_OK)
    {
        state->hub = hub ? strdup(hub) : NULL;
        state->device_id = device_id ? strdup(device_id) : NULL;
        state->done = 1;
    }
    else
    {
        state->done = 2;
    }
}

static void on_status(PROV_DEVICE_REG_STATUS status, void* context)
{
    PROVISIONING* state = context;
    const char* name = MU_ENUM_TO_STRING(PROV_DEVICE_REG_STATUS, status);
    size_t used = strlen(state->statuses);
    snprintf(state->statuses + used, sizeof(state->statuses) - used, "%s%s", used ? "," : "", name);
}

typedef struct
{
    int telemetry_done;
    IOTHUB_CLIENT_CONFIRMATION_RESULT telemetry;
    int twin_done;
    char* twin;
    int connected;
    IOTHUB_CLIENT_CONNECTION_STATUS_REASON last_reason;
} HUB;

static void on_confirmation(IOTHUB_CLIENT_CONFIRMATION_RESULT result, void* context)
{
    HUB* hub = context;
    hub->telemetry = result;
    hub->telemetry_done = 1;
}

static void on_twin(DEVICE_TWIN_UPDATE_STATE state, const unsigned char* payload, size_t size, void* context)
{
    (void)state;
    HUB* hub = context;
    hub->twin = malloc(size + 1);
    if (hub->twin != NULL)
    {
        memcpy(hub->twin, payload, size);
        hub->twin[size] = '\0';
    }
    hub->twin_done = 1;
}

static void on_connection(IOTHUB_CLIENT_CONNECTION_STATUS status, IOTHUB_CLIENT_CONNECTION_STATUS_REASON reason, void* context)
{
    HUB* hub = context;
    hub->connected = status == IOTHUB_CLIENT_CONNECTION_AUTHENTICATED;
    hub->last_reason = reason;
}

static PROV_DEVICE_TRANSPORT_PROVIDER_FUNCTION transport_named(const char* name)
{
    if (strcmp(name, "mqtt") == 0) return Prov_Device_MQTT_Protocol;
    if (strcmp(name, "mqttws") == 0) return Prov_Device_MQTT_WS_Protocol;
    if (strcmp(name, "amqp") == 0) return Prov_Device_AMQP_Protocol;
    if (strcmp(name, "amqpws") == 0) return Prov_Device_AMQP_WS_Protocol;
    if (strcmp(name, "http") == 0) return Prov_Device_HTTP_Protocol;
    return NULL;
}

static void fail(const char* step, const char* error)
{
    printf("{\"step\":\"%s\",\"ok\":false,\"error\":", step);
    print_json_string(error);
    puts("}");
    fflush(stdout);
}

static int run_hub(const char* hub_host, const char* device_id, const char* key, const char* ca, time_t deadline)
{
    size_t length = strlen(hub_host) + strlen(device_id) + strlen(key) + 64;
    char* connection_string = malloc(length);
    if (connection_string == NULL) return 1;
    snprintf(connection_string, length, "HostName=%s;DeviceId=%s;SharedAccessKey=%s", hub_host, device_id, key);
    IOTHUB_DEVICE_CLIENT_LL_HANDLE client = IoTHubDeviceClient_LL_CreateFromConnectionString(connection_string, MQTT_Protocol);
    free(connection_string);
    if (client == NULL)
    {
        fail("hub", "IoTHubDeviceClient_LL_CreateFromConnectionString failed");
        return 1;
    }
    HUB hub;
    memset(&hub, 0, sizeof(hub));
    bool trace = getenv("C_DEVICE_TRACE") != NULL;
    (void)IoTHubDeviceClient_LL_SetOption(client, OPTION_LOG_TRACE, &trace);
    (void)IoTHubDeviceClient_LL_SetOption(client, OPTION_TRUSTED_CERT, ca);
    (void)IoTHubDeviceClient_LL_SetConnectionStatusCallback(client, on_connection, &hub);

    const char* body = "{\"source\":\"azure-iot-sdk-c\"}";
    IOTHUB_MESSAGE_HANDLE message = IoTHubMessage_CreateFromByteArray((const unsigned char*)body, strlen(body));
    (void)IoTHubMessage_SetContentTypeSystemProperty(message, "application/json");
    (void)IoTHubMessage_SetContentEncodingSystemProperty(message, "utf-8");
    (void)IoTHubMessage_SetProperty(message, "peer", "c-sdk");
    int rc = 1;
    if (IoTHubDeviceClient_LL_SendEventAsync(client, message, on_confirmation, &hub) != IOTHUB_CLIENT_OK)
    {
        fail("telemetry", "IoTHubDeviceClient_LL_SendEventAsync failed");
    }
    else if (IoTHubDeviceClient_LL_GetTwinAsync(client, on_twin, &hub) != IOTHUB_CLIENT_OK)
    {
        fail("twin", "IoTHubDeviceClient_LL_GetTwinAsync failed");
    }
    else
    {
        while (!(hub.telemetry_done && hub.twin_done) && time(NULL) < deadline)
        {
            IoTHubDeviceClient_LL_DoWork(client);
            ThreadAPI_Sleep(10);
        }
        printf("{\"step\":\"telemetry\",\"ok\":%s,\"result\":", hub.telemetry_done && hub.telemetry == IOTHUB_CLIENT_CONFIRMATION_OK ? "true" : "false");
        print_json_string(hub.telemetry_done ? MU_ENUM_TO_STRING(IOTHUB_CLIENT_CONFIRMATION_RESULT, hub.telemetry) : "TIMEOUT");
        printf(",\"connectionReason\":");
        print_json_string(MU_ENUM_TO_STRING(IOTHUB_CLIENT_CONNECTION_STATUS_REASON, hub.last_reason));
        puts("}");
        printf("{\"step\":\"twin\",\"ok\":%s,\"twin\":", hub.twin != NULL ? "true" : "false");
        print_json_string(hub.twin);
        puts("}");
        fflush(stdout);
        rc = hub.telemetry_done && hub.telemetry == IOTHUB_CLIENT_CONFIRMATION_OK && hub.twin != NULL ? 0 : 1;
    }
    IoTHubMessage_Destroy(message);
    IoTHubDeviceClient_LL_Destroy(client);
    free(hub.twin);
    return rc;
}

int main(int argc, char** argv)
{
    if (argc < 7)
    {
        fprintf(stderr, "usage: %s TRANSPORT DPS_HOST ID_SCOPE REGISTRATION_ID KEY CA_FILE [TIMEOUT_S] [--hub]\n", argv[0]);
        return 2;
    }
    const char* transport_name = argv[1];
    const char* dps_host = argv[2];
    const char* id_scope = argv[3];
    const char* registration_id = argv[4];
    const char* key = argv[5];
    int timeout_s = argc > 7 ? atoi(argv[7]) : 60;
    bool with_hub = argc > 8 && strcmp(argv[8], "--hub") == 0;

    PROV_DEVICE_TRANSPORT_PROVIDER_FUNCTION transport = transport_named(transport_name);
    char* ca = read_file(argv[6]);
    if (transport == NULL || ca == NULL)
    {
        fail("provision", transport == NULL ? "unknown transport" : "cannot read the CA file");
        return 2;
    }

    /* The SDK's logging aborts unless the logger was initialised first. */
    if (logger_init() != 0 || IoTHub_Init() != 0 || prov_dev_security_init(SECURE_DEVICE_TYPE_SYMMETRIC_KEY) != 0 ||
        prov_dev_set_symmetric_key_info(registration_id, key) != 0)
    {
        fail("provision", "SDK initialisation failed");
        return 1;
    }

    time_t deadline = time(NULL) + timeout_s;
    PROVISIONING state;
    memset(&state, 0, sizeof(state));
    PROV_DEVICE_LL_HANDLE handle = Prov_Device_LL_Create(dps_host, id_scope, transport);
    if (handle == NULL)
    {
        fail("provision", "Prov_Device_LL_Create failed");
        return 1;
    }
    /* HTTP refuses the trace option with symmetric keys; the other transports log the wire. */
    bool trace = getenv("C_DEVICE_TRACE") != NULL && strcmp(transport_name, "http") != 0;
    (void)Prov_Device_LL_SetOption(handle, PROV_OPTION_LOG_TRACE, &trace);
    if (Prov_Device_LL_SetOption(handle, OPTION_TRUSTED_CERT, ca) != PROV_DEVICE_RESULT_OK)
    {
        fail("provision", "OPTION_TRUSTED_CERT refused");
        return 1;
    }
    if (Prov_Device_LL_Register_Device(handle, on_register, &state, on_status, &state) != PROV_DEVICE_RESULT_OK)
    {
        fail("provision", "Prov_Device_LL_Register_Device failed");
        return 1;
    }
    while (state.done == 0 && time(NULL) < deadline)
    {
        Prov_Device_LL_DoWork(handle);
        ThreadAPI_Sleep(10);
    }
    Prov_Device_LL_Destroy(handle);

    printf("{\"step\":\"provision\",\"ok\":%s,\"status\":", state.done == 1 ? "true" : "false");
    print_json_string(state.done == 1 ? "assigned" : "failed");
    printf(",\"assignedHub\":");
    print_json_string(state.hub);
    printf(",\"deviceId\":");
    print_json_string(state.device_id);
    printf(",\"error\":");
    print_json_string(state.done == 1 ? NULL : state.done == 2 ? MU_ENUM_TO_STRING(PROV_DEVICE_RESULT, state.result) : "TIMEOUT");
    printf(",\"statuses\":");
    print_json_string(state.statuses);
    puts("}");
    fflush(stdout);

    int rc = state.done == 1 ? 0 : 1;
    if (rc == 0 && with_hub)
    {
        rc = run_hub(state.hub, state.device_id, key, ca, time(NULL) + timeout_s);
    }
    free(state.hub);
    free(state.device_id);
    free(ca);
    prov_dev_security_deinit();
    IoTHub_Deinit();
    logger_deinit();
    return rc;
}
