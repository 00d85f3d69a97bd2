-- Per-device MQTT credentials for the hub's embedded broker (MQTT_AUTH=on). A device may
-- be provisioned before it is ever seen, so there is no foreign key to "devices".
-- password_hash is self-describing: scrypt$<N>$<r>$<p>$<salt base64>$<key base64>;
-- the password itself is shown once, when it is generated, and never stored.
CREATE TABLE "device_credentials" (
    "device_id" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "rotated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disabled_at" TIMESTAMPTZ(3),

    CONSTRAINT "device_credentials_pkey" PRIMARY KEY ("device_id")
);
